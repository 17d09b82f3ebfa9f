"""A real SMTP server for the mail tests (tests/api/mail_smtp.rs): aiosmtpd on 127.0.0.1.

Usage: python3 tests/rp/smtp_sink.py PORT DIR

Every message received is written to DIR as NNNN.json (written to a temporary name and
renamed, so a reader never sees half a file): the envelope (`mail_from`, `rcpt_tos`), the
raw message as received (`raw`), and what Python's own email parser makes of it
(`headers` as [name, value] pairs in order, `parts` as {content_type, charset, content}
for every leaf part), so the test checks the message with a parser that is not gatehouse's.
Prints "smtp sink listening on 127.0.0.1:PORT" once it accepts connections, then serves
until it is killed.
"""

import email
import email.policy
import json
import os
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        parts = []
        for part in parsed.walk():
            if part.is_multipart():
                continue
            parts.append(
                {
                    "content_type": part.get_content_type(),
                    "charset": part.get_content_charset(),
                    "content": part.get_content(),
                }
            )
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "raw": raw.decode("utf-8", errors="replace"),
            "headers": [[name, str(value)] for name, value in parsed.items()],
            "content_type": parsed.get_content_type(),
            "parts": parts,
        }
        with self.lock:
            self.count += 1
            name = "%04d.json" % self.count
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.directory, name))
        return "250 Message accepted for delivery"


def main():
    port = int(sys.argv[1])
    directory = sys.argv[2]
    os.makedirs(directory, exist_ok=True)
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("smtp sink listening on 127.0.0.1:%d" % port, flush=True)
    try:
        threading.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
