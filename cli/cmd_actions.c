/*
 * cmd_actions.c - `cairn actions [--json]`: the built-in actions and the
 * `with` fields each takes, from the same signatures the loader checks.
 */
#include <string.h>

#include "actions/action.h"
#include "cli/cli.h"

static const char *type_name(cairn_field_type t) {
    switch (t) {
    case CAIRN_FIELD_STRING: return "string";
    case CAIRN_FIELD_NUMBER: return "number";
    case CAIRN_FIELD_INTEGER: return "integer";
    case CAIRN_FIELD_BOOL: return "boolean";
    case CAIRN_FIELD_OBJECT: return "object";
    case CAIRN_FIELD_ARRAY: return "array";
    case CAIRN_FIELD_STRING_OR_ARRAY: return "string|array";
    case CAIRN_FIELD_DURATION: return "duration";
    case CAIRN_FIELD_PATTERN: return "pattern";
    default: return "any";
    }
}

static jv action_json(const cairn_action *a) {
    jv fields = jv_array();
    for (const cairn_field_sig *f = a->sig->fields; f && f->name; f++) {
        jv o = jv_object_set(jv_object(), jv_string("name"), jv_string(f->name));
        o = jv_object_set(o, jv_string("type"), jv_string(type_name(f->type)));
        o = jv_object_set(o, jv_string("required"), jv_bool(f->flags & CAIRN_FIELD_REQUIRED));
        if (f->flags & CAIRN_FIELD_SHELL) o = jv_object_set(o, jv_string("script"), jv_true());
        fields = jv_array_append(fields, o);
    }
    jv o = jv_object_set(jv_object(), jv_string("name"), jv_string(a->sig->name));
    o = jv_object_set(o, jv_string("fields"), fields);
    o = jv_object_set(o, jv_string("open"), jv_bool(a->sig->open));
    if (a->sig->one_of) o = jv_object_set(o, jv_string("one_of"), jv_string(a->sig->one_of));
    return o;
}

int cmd_actions(cli_opts *o, int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!cli_common_opt(o, argc, argv, &i)) return cli_usage("usage: cairn actions [--json]");
    jv all = jv_array();
    for (int i = 0; cairn_action_at(i); i++) {
        const cairn_action *a = cairn_action_at(i);
        if (o->json) {
            all = jv_array_append(all, action_json(a));
            continue;
        }
        printf("%-8s", a->sig->name);
        for (const cairn_field_sig *f = a->sig->fields; f && f->name; f++)
            printf(" %s%s:%s", f->name, (f->flags & CAIRN_FIELD_REQUIRED) ? "*" : "",
                   type_name(f->type));
        if (a->sig->open) printf(" (any fields)");
        if (a->sig->one_of) printf("  [one of %s]", a->sig->one_of);
        printf("\n");
    }
    if (o->json) cli_print_json(stdout, all, false);
    else jv_free(all);
    return EXIT_OK;
}
