#!/usr/bin/python3
"""What the Splunk SOAR SMTP app does for one `send email` (plain body, no
attachments, ssl_config None, Passwordless), as one Python process: the
baseline of bench/run.sh (a).

Follows ../shared/reference/soar-smtp.md §2.2 and §4: smtplib.SMTP(host,
port) (EHLO with socket.getfqdn()), no STARTTLS, no AUTH; a MIMEText body
(utf-8, base64, as the app does with `encoding` true); Subject, From, To
headers; sendmail(from, rcpts, msg.as_string(), mail_options); never QUIT
(the app drops the socket when the process ends).

mail_options: the app passes ["SMTPUTF8"] when allow_smtputf8 is true, and
smtplib then refuses every message to a server that does not advertise
SMTPUTF8 (smtp-sink does not); so this is the allow_smtputf8=false path.

usage: soar_smtplib.py HOST PORT FROM TO SUBJECT BODY_FILE
"""
import smtplib
import sys
from email.mime.text import MIMEText


def main():
    host, port, sender, to, subject, body_file = sys.argv[1:7]
    with open(body_file, encoding="utf-8") as f:
        body = f.read()
    smtp = smtplib.SMTP(host, port)
    smtp.ehlo()
    msg = MIMEText(body, "plain", "utf-8")
    msg["Subject"] = subject
    msg["From"] = sender
    rcpts = [a.strip() for a in to.split(",") if a.strip()]
    msg["To"] = ", ".join(rcpts)
    smtp.sendmail(sender, rcpts, msg.as_string(), mail_options=[])
    # no quit(): as the app


if __name__ == "__main__":
    main()
