#!/usr/bin/env python3
"""A local SMTP server that keeps what it receives, for the notify tests.

    smtp_sink.py --port-file FILE --dir DIR [--cert PEM --key PEM]
                 [--implicit-tls] [--refuse ADDR]... [--auth PLAIN|LOGIN
                 --user USER --password PASSWORD]

Listens on 127.0.0.1 on a free port and writes that port to FILE
(atomically) once it accepts connections.  Each message accepted is written
to DIR/NNNN.json before the server answers the end of its data:
{"mail_from", "rcpt_to", "data" (the message, dot-stuffing undone), "tls"
(whether the session was encrypted), "auth_user" (or null), "helo"}.

  --cert/--key     offer STARTTLS with this certificate
  --implicit-tls   speak TLS from the first byte (smtps) instead
  --refuse ADDR    answer RCPT TO:<ADDR> with 550 (repeatable)
  --auth MECH      offer only AUTH MECH and refuse MAIL before a login with
                   --user/--password (530); a wrong login gets 535
Python 3 standard library only.
"""
import argparse
import base64
import json
import os
import socketserver
import ssl
import sys
import threading

ARGS = None
CTX = None
COUNTER = [0]
LOCK = threading.Lock()


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
    os.rename(tmp, path)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def unb64(text):
    try:
        return base64.b64decode(text.strip(), validate=True).decode("utf-8", "replace")
    except (ValueError, UnicodeError):
        return None


class Session(socketserver.StreamRequestHandler):
    def setup(self):
        if ARGS.implicit_tls:
            self.request = CTX.wrap_socket(self.request, server_side=True)
        super().setup()
        self.tls = ARGS.implicit_tls
        self.user = None
        self.helo = None
        self.reset()

    def reset(self):
        self.mail_from = None
        self.rcpt = []

    def send(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def readline(self):
        line = self.rfile.readline(65537)
        if not line:
            raise EOFError
        return line.decode("utf-8", "replace").rstrip("\r\n")

    def handle(self):
        try:
            self.send("220 sink.test ESMTP test sink")
            while self.command(self.readline()):
                pass
        except (EOFError, ConnectionError, ssl.SSLError, OSError):
            pass

    def ehlo(self, arg):
        self.helo = arg
        lines = ["sink.test", "SIZE 10485760", "8BITMIME"]
        if ARGS.cert and not self.tls and not ARGS.implicit_tls:
            lines.append("STARTTLS")
        if ARGS.auth:
            lines.append("AUTH " + ARGS.auth)
        for i, text in enumerate(lines):
            self.send(("250 " if i == len(lines) - 1 else "250-") + text)

    def starttls(self):
        self.send("220 2.0.0 Ready to start TLS")
        self.wfile.flush()
        self.request = CTX.wrap_socket(self.request, server_side=True)
        self.connection = self.request
        self.rfile = self.request.makefile("rb")
        self.wfile = self.request.makefile("wb")
        self.tls = True
        self.helo = None
        self.reset()

    def auth(self, arg):
        parts = arg.split()
        mech = parts[0].upper() if parts else ""
        if mech != (ARGS.auth or "").upper():
            return self.send("504 5.5.4 Unrecognized authentication type")
        if mech == "PLAIN":
            blob = parts[1] if len(parts) > 1 else (self.send("334 ") or self.readline())
            fields = (unb64(blob) or "").split("\0")
            user, password = (fields[1], fields[2]) if len(fields) == 3 else (None, None)
        else:
            user = unb64(parts[1]) if len(parts) > 1 else None
            if user is None:
                self.send("334 " + b64("Username:"))
                user = unb64(self.readline())
            self.send("334 " + b64("Password:"))
            password = unb64(self.readline())
        if user == ARGS.user and password == ARGS.password:
            self.user = user
            return self.send("235 2.7.0 Authentication successful")
        self.send("535 5.7.8 Authentication credentials invalid")

    def data(self):
        if not self.rcpt:
            return self.send("503 5.5.1 No valid recipients")
        self.send("354 End data with <CR><LF>.<CR><LF>")
        lines = []
        while True:
            line = self.rfile.readline(1 << 20)
            if not line:
                raise EOFError
            if line in (b".\r\n", b".\n"):
                break
            lines.append(line[1:] if line.startswith(b"..") else line)
        with LOCK:
            COUNTER[0] += 1
            n = COUNTER[0]
        rec = {"mail_from": self.mail_from, "rcpt_to": self.rcpt, "tls": self.tls,
               "auth_user": self.user, "helo": self.helo,
               "data": b"".join(lines).decode("utf-8", "replace")}
        write_atomic(os.path.join(ARGS.dir, "%04d.json" % n), json.dumps(rec))
        self.reset()
        self.send("250 2.0.0 Ok: queued as SINK%04d" % n)

    def command(self, line):
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        if verb in ("EHLO", "HELO"):
            self.ehlo(arg) if verb == "EHLO" else self.send("250 sink.test")
        elif verb == "STARTTLS" and ARGS.cert and not self.tls:
            self.starttls()
        elif verb == "AUTH":
            self.auth(arg)
        elif verb == "MAIL":
            if ARGS.auth and not self.user:
                self.send("530 5.7.0 Authentication required")
            else:
                self.mail_from = arg.partition(":")[2].strip().split(" ")[0].strip("<>")
                self.send("250 2.1.0 Ok")
        elif verb == "RCPT":
            addr = arg.partition(":")[2].strip().strip("<>")
            if self.mail_from is None:
                self.send("503 5.5.1 MAIL first")
            elif addr in ARGS.refuse:
                self.send("550 5.1.1 <%s>: Recipient address rejected: User unknown" % addr)
            else:
                self.rcpt.append(addr)
                self.send("250 2.1.5 Ok")
        elif verb == "DATA":
            self.data()
        elif verb == "RSET":
            self.reset()
            self.send("250 2.0.0 Ok")
        elif verb == "NOOP":
            self.send("250 2.0.0 Ok")
        elif verb == "QUIT":
            self.send("221 2.0.0 Bye")
            return False
        else:
            self.send("502 5.5.2 Command not recognized")
        return True


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global ARGS, CTX
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--refuse", action="append", default=[])
    p.add_argument("--auth", choices=["PLAIN", "LOGIN"])
    p.add_argument("--user")
    p.add_argument("--password")
    ARGS = p.parse_args()
    if ARGS.cert:
        CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        CTX.load_cert_chain(ARGS.cert, ARGS.key)
    server = Server(("127.0.0.1", 0), Session)
    write_atomic(ARGS.port_file, str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
