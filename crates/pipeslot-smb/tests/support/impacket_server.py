#!/usr/bin/python3
"""impacket's SimpleSMBServer (SMB 2.0.2) as a second real SMB server for
pipeslot's interop tests, on 127.0.0.1 only.

usage: impacket_server.py PORT USER PASSWORD

Serves IPC$ for USER/PASSWORD. The pipe \\\\pipe\\echo is one that impacket
forwards to a TCP socket (registerNamedPipe); behind it an echo service
answers each chunk it receives with the same bytes. Prints "ready PORT" once
listening. Debian's python3-impacket (run with /usr/bin/python3)."""
import socketserver
import sys
import threading

from impacket import ntlm, smbserver


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(1 << 16)
            if not data:
                return
            self.request.sendall(data)


class Threaded(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    echo = Threaded(("127.0.0.1", 0), Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    server = smbserver.SimpleSMBServer(listenAddress="127.0.0.1", listenPort=port)
    server.setSMB2Support(True)
    server.addCredential(user, 1000, ntlm.compute_lmhash(password).hex(), ntlm.compute_nthash(password).hex())
    server.registerNamedPipe("echo", echo.server_address)
    server.setLogFile("")
    print("ready %d" % port, flush=True)
    server.start()


main()
