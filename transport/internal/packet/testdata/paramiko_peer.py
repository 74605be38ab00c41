"""Paramiko's Packetizer as an independent SSH binary packet peer.

Reads a JSON list of jobs on stdin. For each job it decodes "decode" (a hex
stream sealed by ferry) into payloads, and seals the "encode" payloads into a
stream for ferry to read, using paramiko's own cipher and MAC tables
(Transport._cipher_info / _mac_info) and its zlib compressor. Writes a JSON
list of results on stdout.
"""
import json
import logging
import sys

from cryptography.hazmat.backends import default_backend
from paramiko.compress import ZlibCompressor, ZlibDecompressor
from paramiko.message import Message
from paramiko.packet import Packetizer
from paramiko.transport import Transport


class FakeSocket:
    def __init__(self, data=b""):
        self.data = data
        self.out = bytearray()

    def recv(self, n):
        x, self.data = self.data[:n], self.data[n:]
        return x

    def send(self, b):
        self.out += b
        return len(b)

    def settimeout(self, t):
        pass


def engine(job, encrypt):
    info = Transport._cipher_info[job["cipher"]]
    key = bytes.fromhex(job["key"])
    iv = bytes.fromhex(job["iv"])
    c = info["class"](key)
    from cryptography.hazmat.primitives.ciphers import Cipher
    cipher = Cipher(c, info["mode"](iv), backend=default_backend())
    return (cipher.encryptor() if encrypt else cipher.decryptor()), info["block-size"]


def run(job):
    mac = Transport._mac_info[job["mac"]]
    etm = "etm@openssh.com" in job["mac"]
    mackey = bytes.fromhex(job["mackey"])
    res = {}

    sock = FakeSocket(bytes.fromhex(job["decode"]))
    p = Packetizer(sock)
    p.set_log(logging.getLogger("peer"))
    eng, bs = engine(job, False)
    p.set_inbound_cipher(eng, bs, mac["class"], mac["size"], mackey, etm=etm)
    if job["zlib"]:
        p.set_inbound_compressor(ZlibDecompressor())
    got = []
    for _ in range(job["count"]):
        cmd, m = p.read_message()
        got.append((bytes([cmd]) + m.asbytes()).hex())
    res["decoded"] = got

    sock = FakeSocket()
    p = Packetizer(sock)
    p.set_log(logging.getLogger("peer"))
    eng, bs = engine(job, True)
    p.set_outbound_cipher(eng, bs, mac["class"], mac["size"], mackey,
                          sdctr=job["cipher"].endswith("-ctr"), etm=etm)
    if job["zlib"]:
        p.set_outbound_compressor(ZlibCompressor())
    for h in job["encode"]:
        m = Message()
        m.add_bytes(bytes.fromhex(h))
        p.send_message(m)
    res["encoded"] = bytes(sock.out).hex()
    return res


def main():
    jobs = json.load(sys.stdin)
    out = []
    for job in jobs:
        try:
            out.append(run(job))
        except Exception as e:  # reported per job to the Go test
            out.append({"error": "%s: %s" % (type(e).__name__, e)})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
