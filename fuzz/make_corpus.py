#!/usr/bin/env python3
"""Writes the seed corpus fuzz/corpus/<target>/ (committed; rerun after editing this file).

Realistic inputs per target: client transcripts as Thunderbird, Outlook, iOS Mail and
Python's smtplib/imaplib/poplib send them, and hostile MIME (1,000-level nesting, broken
boundaries, malformed base64 and quoted-printable, encoded-words). The first byte of the
stream targets (smtp_session, imap_command, pop3_command's TOP/stuffing half, sasl) is a
knob that picks a split point and limits; see docs/fuzzing.md.

Inputs that found bugs are committed beside these as `regression_*` files, which this script
leaves alone.
"""
import base64
import os
import shutil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n")


# ---------------------------------------------------------------- SMTP
SMTP_LINES = {
    "ehlo": "EHLO [127.0.0.1]\r\n",
    "ehlo_smtplib": "ehlo client.example.org\r\n",
    "helo": "HELO mail.example.com\r\n",
    "mail": "MAIL FROM:<alice@example.com> SIZE=1024\r\n",
    "mail_params": "MAIL FROM:<alice@example.com> SIZE=10485760 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ314159 AUTH=<>\r\n",
    "mail_null": "MAIL FROM:<>\r\n",
    "mail_outlook": "MAIL FROM: <alice@example.com>\r\n",
    "mail_utf8": "MAIL FROM:<用户@例子.广告> SMTPUTF8\r\n",
    "rcpt": "RCPT TO:<bob@example.com>\r\n",
    "rcpt_dsn": "RCPT TO:<bob@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Bx@example.com\r\n",
    "rcpt_postmaster": "RCPT TO:<Postmaster>\r\n",
    "rcpt_quoted": 'RCPT TO:<"john doe"@example.com>\r\n',
    "rcpt_route": "RCPT TO:<@a.example,@b.example:bob@example.com>\r\n",
    "data": "DATA\r\n",
    "bdat": "BDAT 86\r\n",
    "bdat_last": "BDAT 0 LAST\r\n",
    "bdat_huge": "BDAT 18446744073709551615 LAST\r\n",
    "auth_plain": "AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==\r\n",
    "auth_login": "AUTH LOGIN\r\n",
    "auth_empty_ir": "AUTH PLAIN =\r\n",
    "auth_scram": "AUTH SCRAM-SHA-256 biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8=\r\n",
    "starttls": "STARTTLS\r\n",
    "vrfy": "VRFY postmaster\r\n",
    "expn": "EXPN staff\r\n",
    "help": "HELP MAIL\r\n",
    "noop": "NOOP hello\r\n",
    "rset": "RSET\r\n",
    "quit": "QUIT\r\n",
    "bare_lf": "MAIL FROM:<a@b.example>\n",
    "tab": "MAIL\tFROM:<a@b.example>\r\n",
    "nul": "MAIL FROM:<a\x00@b.example>\r\n",
    "long_verb": "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\n",
}
for name, line in SMTP_LINES.items():
    write("smtp_command", name, line)

MESSAGE = crlf(
    "From: Alice <alice@example.com>\nTo: bob@example.com\nSubject: test\n"
    "Date: Sun, 06 Dec 2026 07:00:00 +0000\nMessage-ID: <1@example.com>\n\n"
    "Hello Bob.\n.leading dot\n..two dots\n.\n"
)
STUFFED = MESSAGE.replace("\r\n.", "\r\n..")
SMTPLIB = (
    "ehlo [127.0.1.1]\r\nmail FROM:<alice@example.com> size=%d\r\nrcpt TO:<bob@example.com>\r\n"
    "data\r\n%s.\r\nquit\r\n" % (len(MESSAGE), STUFFED)
)
write("smtp_session", "smtplib_data", b"\x80" + SMTPLIB.encode())
BDAT_MSG = MESSAGE.encode()
bdat = (
    b"EHLO client.example.org\r\nMAIL FROM:<alice@example.com> BODY=BINARYMIME\r\n"
    b"RCPT TO:<bob@example.com>\r\nBDAT 40\r\n" + BDAT_MSG[:40]
    + b"BDAT %d LAST\r\n" % (len(BDAT_MSG) - 40) + BDAT_MSG[40:] + b"QUIT\r\n"
)
write("smtp_session", "bdat_chunks", b"\x30" + bdat)
write("smtp_session", "bdat_lying_size", b"\x10EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.com>\r\nBDAT 4294967295 LAST\r\nshort\r\n")
write("smtp_session", "bdat_binary", b"\x99BDAT 8\r\n\x00\r\n.\r\n\xff\xfeBDAT 0 LAST\r\nRSET\r\n")
write("smtp_session", "pipelined", b"\x05EHLO a\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<d@y.example>\r\nDATA\r\n.\r\nQUIT\r\n")
for i, (name, sep) in enumerate(
    [("lf_dot_lf", b"\n.\n"), ("cr_dot_cr", b"\r.\r"), ("lf_dot_crlf", b"\n.\r\n"), ("crlf_dot_lf", b"\r\n.\n")]
):
    write(
        "smtp_session",
        "smuggling_" + name,
        bytes([0x20 + 40 * i]) + b"EHLO a\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"
        b"Subject: hi\r\n\r\nbody" + sep + b"MAIL FROM:<admin@x.example>\r\nRCPT TO:<v@y.example>\r\nDATA\r\nforged\r\n.\r\nQUIT\r\n",
    )
write("smtp_session", "long_line", b"\x44EHLO a\r\nMAIL FROM:<" + b"a" * 5000 + b"@x.example>\r\nQUIT\r\n")
write("smtp_session", "auth_login", b"\x60EHLO a\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\nSTARTTLS\r\nQUIT\r\n")

# ---------------------------------------------------------------- IMAP
def imap(name, knob, text):
    write("imap_command", name, bytes([knob]) + (text.encode() if isinstance(text, str) else text))


imap("thunderbird", 0x20, crlf(
    '1 capability\n2 ID ("name" "Thunderbird" "version" "128.3.1")\n3 authenticate PLAIN\n'
    "AGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==\n4 namespace\n5 enable UTF8=ACCEPT CONDSTORE\n"
    '6 list (SUBSCRIBED) "" "*" RETURN (CHILDREN SPECIAL-USE)\n7 select "INBOX" (CONDSTORE)\n'
    "8 getquotaroot \"INBOX\"\n9 UID fetch 1:* (FLAGS)\n"
    "10 UID fetch 1:4 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date "
    "Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])\n"
    "11 UID fetch 3 (UID RFC822.SIZE BODY.PEEK[])\n12 IDLE\nDONE\n13 UID store 3 +FLAGS (\\Seen)\n"
    "14 UID move 3 \"Trash\"\n15 logout\n"))
imap("thunderbird_append", 0x90, crlf('16 append "Sent" (\\Seen) {58}\n') +
     "From: a@example.com\r\nSubject: sent\r\n\r\nHello, this is it.\r\n" + "\r\n")
imap("outlook", 0x40, crlf(
    'A0001 CAPABILITY\nA0002 LOGIN "alice@example.com" "pa\\"ss\\\\word"\nA0003 LIST "" "*"\n'
    "A0004 SELECT INBOX\nA0005 UID SEARCH UNDELETED\nA0006 UID FETCH 1:* (UID FLAGS INTERNALDATE "
    "RFC822.SIZE BODY.PEEK[HEADER])\nA0007 UID FETCH 2 (BODYSTRUCTURE)\nA0008 UID FETCH 2 BODY.PEEK[1.2]\n"
    "A0009 UID STORE 2 +FLAGS.SILENT (\\Deleted)\nA0010 EXPUNGE\nA0011 LOGOUT\n"))
imap("ios", 0x70, crlf(
    '1 ID ("name" "iPhone Mail" "version" "21A329" "os" "iOS" "os-version" "17.0 (21A329)")\n'
    "2 LOGIN alice secret\n3 ENABLE QRESYNC\n4 SELECT INBOX (QRESYNC (1700000000 56 1:100 (1,3,5 10,30,50)))\n"
    "5 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 56 VANISHED)\n6 UID FETCH 7 (BODY.PEEK[1]<0.2048> BINARY.PEEK[2] BINARY.SIZE[2])\n"
    '7 STATUS "Drafts" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)\n8 UID EXPUNGE 4:5\n'
    "9 NOOP\n10 IDLE\nDONE\n"))
imap("literal_plus", 0x33, b"a1 APPEND INBOX (\\Flagged) \"06-Dec-2026 07:00:00 +0000\" {11+}\r\nhello world\r\na2 NOOP\r\n")
imap("literal_sync", 0x30, b"a1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n")
imap("literal8_binary", 0x55, b"a1 APPEND INBOX ~{7}\r\n\x00bin\x00\r\n\r\na2 APPEND INBOX ~{5+}\r\n\xff\x00\x01\x02\x03\r\n")
imap("multiappend_catenate", 0x66, b'a1 APPEND Drafts (\\Draft) CATENATE (URL "/INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=HEADER" TEXT {4+}\r\nbody URL "/INBOX/;UID=20/;SECTION=1.MIME") {3+}\r\nabc\r\n')
imap("search", 0x45, "a1 SEARCH CHARSET UTF-8 TEXT {5}\r\ncaf\xc3\xa9 SUBJECT \"x\" OR FROM alice (SINCE 1-Feb-2026 NOT DELETED) UID 1:*,5 LARGER 100 MODSEQ 5\r\n".encode("latin1"))
imap("esearch_sort_thread", 0x41, crlf(
    "a1 UID SEARCH RETURN (MIN MAX COUNT ALL SAVE) UNSEEN\na2 SORT (REVERSE ARRIVAL SUBJECT DISPLAYFROM) UTF-8 ALL\n"
    "a3 THREAD REFERENCES UTF-8 ALL\na4 UID SEARCH RETURN (PARTIAL -1:-100) $\n"
    'a5 NOTIFY SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (From)]) MessageExpunge)) (personal (MailboxName))\n'
    'a6 GENURLAUTH "imap://alice@example.com/INBOX/;uid=20;urlauth=submit+alice" INTERNAL\n'
    'a7 LIST "" "%" RETURN (STATUS (MESSAGES UNSEEN))\na8 CREATE "&ZeVnLIqe-" (USE (\\Sent))\n'
    "a9 SETQUOTA \"\" (STORAGE 512)\n"))
imap("deep_parens", 0x21, "a1 SEARCH " + "(" * 200 + "ALL" + ")" * 200 + "\r\n")
imap("lying_literal", 0x31, b"a1 APPEND INBOX {4294967295}\r\nshort\r\na2 APPEND INBOX {99999999999999999999}\r\na3 NOOP\r\n")
imap("authenticate_ir", 0x52, b"a1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\na2 AUTHENTICATE SCRAM-SHA-256\r\nbiwsbj11c2VyLHI9YWJj\r\n*\r\n")
imap("bare_lf_and_nul", 0x11, b"a1 NOOP\na2 SELECT \"in\x00box\"\r\na3 FETCH 1 BODY[1.2.3.MIME]\r\n\x00\xff\r\n")

# ---------------------------------------------------------------- IMAP MIME (messages)
def msg(name, text):
    write("imap_mime", name, crlf(text) if isinstance(text, str) else text)


msg("plain", "From: Alice <alice@example.com>\nTo: Bob <bob@example.com>, Carol <carol@example.com>\n"
    "Subject: plain\nDate: Sun, 06 Dec 2026 07:00:00 +0900\nMessage-ID: <p@example.com>\n\nHello needle.\n")
msg("alternative", "From: a@example.com\nSubject: alt\nMIME-Version: 1.0\n"
    "Content-Type: multipart/alternative; boundary=\"b1\"\n\npreamble\n--b1\nContent-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9 =\nsoft break\n--b1\nContent-Type: text/html; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n\nPGI+aHRtbDwvYj4=\n--b1--\nepilogue\n")
msg("forwarded", "From: a@b.c\nSubject: fwd\nContent-Type: multipart/mixed; boundary=\"X\"\n\n--X\n"
    "Content-Type: text/plain\n\nsee below\n--X\nContent-Type: message/rfc822\n\nFrom: x@y.z\nSubject: inner\n"
    "Content-Type: multipart/alternative; boundary=Y\n\n--Y\nContent-Type: text/plain\n\nplain\n--Y\n"
    "Content-Type: text/html\n\n<b>html</b>\n--Y--\n\n--X\nContent-Type: application/pdf; name=\"=?UTF-8?B?w6l0w6kucGRm?=\"\n"
    "Content-Disposition: attachment; filename*=UTF-8''%C3%A9t%C3%A9.pdf\nContent-Transfer-Encoding: base64\n"
    "Content-Language: en, ja\nContent-Location: http://example.com/x\n\nJVBERi0xLjQK\n--X--\n")
msg("encoded_words", "From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\n"
    "To: =?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>\nCC: =?ISO-8859-1?Q?Olle_J=E4rnefors?= <ojarnef@admin.kth.se>\n"
    "Subject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?= =?UTF-8?B?8J+TrA==?= =?bogus?X?abc?= =?UTF-8?Q?unterminated\n"
    "Reply-To: undisclosed-recipients:;\nSender: Group: a@b.c, \"quoted, name\" <d@e.f>;\n"
    "Content-Type: text/plain; charset=iso-2022-jp\n\n\x1b$B$3$s$K$A$O\x1b(B\n")
msg("broken_boundaries", "Content-Type: multipart/mixed; boundary=\"never-closed\"\n\n--never-closed\n"
    "Content-Type: multipart/mixed; boundary=never\n\n--never\n--never-closed\nContent-Type: text/plain\n\nx\n"
    "--never-closed-but-longer\n--" + "b" * 100 + "\n")
msg("empty_boundary", "Content-Type: multipart/mixed; boundary=\"\"\n\n--\n\nx\n----\n")
msg("no_boundary_param", "Content-Type: multipart/related\n\n--x\nContent-Type: text/plain\n\nx\n--x--\n")
msg("bad_base64", "Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Transfer-Encoding: base64\n\n"
    "!!!not base64@@@====\n====\nQUJD\x00REVG\n--z\nContent-Transfer-Encoding: quoted-printable\n\n=ZZ=4=\n=\n=C3\n--z\n"
    "Content-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n--z--\n")
msg("only_header", "Subject: no body and no blank line\nFrom: a@b.c")
msg("bare_lf", b"From: a@b.c\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/plain\n\nlf only\n--q--\n")
msg("nul_and_invalid_utf8", b"Subject: \xff\xfe\x00bad\r\nFrom: \xc3\x28 <a@b.c>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\x00\xc3\x28\xe2\x82 needle\r\n")
msg("digest", "Content-Type: multipart/digest; boundary=d\n\n--d\n\nFrom: inside@digest\nSubject: default rfc822\n\nbody\n--d\nContent-Type: text/plain\n\nnot a message\n--d--\n")
msg("binary_part", b"Content-Type: multipart/mixed; boundary=bin\r\n\r\n--bin\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\xff\r\n--bin--\r\n")
msg("rfc822_no_header", "Content-Type: message/rfc822\n\n")
msg("continued_headers", "Subject: folded\n  over\n\tlines\nContent-Type: text/plain;\n charset=\"utf-8\";\n format=flowed\n"
    "X-Long: " + "a" * 2000 + "\n\nbody\n")
nest = 1000
deep = "".join("Content-Type: multipart/mixed; boundary=\"n%d\"\n\n--n%d\n" % (i, i) for i in range(nest))
deep += "Content-Type: text/plain\n\ninnermost\n" + "".join("--n%d--\n" % i for i in reversed(range(nest)))
msg("nested_multipart_1000", deep)
deep_msg = "Subject: level\nContent-Type: message/rfc822\n\n" * nest + "Subject: bottom\n\nbottom\n"
msg("nested_rfc822_1000", deep_msg)
parts = "Content-Type: multipart/mixed; boundary=p\n\n" + "".join("--p\n\n%d\n" % i for i in range(3000)) + "--p--\n"
msg("parts_3000", parts)

# ---------------------------------------------------------------- POP3
POP3 = {
    "user": "USER alice@example.com\r\n", "pass": "PASS secret with spaces\r\n", "capa": "CAPA\r\n",
    "stls": "STLS\r\n", "stat": "STAT\r\n", "list": "LIST\r\n", "list_n": "LIST 1\r\n",
    "retr": "RETR 4294967295\r\n", "dele": "DELE 2\r\n", "top": "TOP 1 10\r\n", "uidl": "UIDL 3\r\n",
    "auth_plain": "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", "auth_list": "AUTH\r\n", "noop": "NOOP\r\n",
    "rset": "RSET\r\n", "quit": "QUIT\r\n", "lower": "retr 1\n", "overflow": "RETR 4294967296\r\n",
    "message_for_top": "\x20From: a@b.c\r\nSubject: x\r\n\r\nline 1\r\n.dot line\r\nline 3\n\rline 4\r\n",
    "message_bare_lf": "\x80Subject: y\n\n.\n..\nend",
}
for name, line in POP3.items():
    write("pop3_command", name, line)

# ---------------------------------------------------------------- SASL
SASL = {
    "plain_b64": "AHRpbQB0YW5zdGFhZnRhbnN0YWFm",
    "plain_raw": b"Ursel\x00Kurt\x00xipj3plmq",
    "plain_no_authzid": b"\x00alice@example.com\x00secret",
    "login_user": "YWxpY2U=",
    "cancel": "*",
    "empty": "=",
    "scram_first": "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    "scram_first_authzid": "n,a=admin,n=us=2Cer=3D,r=fyko+d2lbbFgONRv9qkxdawL,x=ext",
    "scram_first_y": "y,,n=user,r=abc",
    "scram_first_p": "p=tls-unique,,n=user,r=abc",
    "scram_first_m": "n,,m=ext,n=user,r=abc",
    "scram_final": "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    "scram_split": "\x40n,,n=user,r=abcc=biws,r=abcsrvnonce,p=AAAA",
    "stored": "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
}
for name, s in SASL.items():
    write("sasl", name, s)

# ---------------------------------------------------------------- web (HTTP requests)
def http(name, text):
    write("web_request", name, crlf(text) if isinstance(text, str) else text)


http("thunderbird", "GET /.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.com HTTP/1.1\n"
     "Host: autoconfig.example.com\nUser-Agent: Mozilla/5.0 Thunderbird/128.3.1\nAccept: */*\nConnection: close\n\n")
http("thunderbird_plain", "GET /mail/config-v1.1.xml HTTP/1.1\nHost: autoconfig.example.com:443\n\n")
body = ('<?xml version="1.0" encoding="utf-8"?>\n<Autodiscover xmlns="http://schemas.microsoft.com/exchange/'
        'autodiscover/outlook/requestschema/2006">\n  <Request>\n    <EMailAddress>alice&#64;example.com</EMailAddress>\n'
        '    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a'
        '</AcceptableResponseSchema>\n  </Request>\n</Autodiscover>\n')
http("autodiscover_v1_post", "POST /Autodiscover/Autodiscover.xml HTTP/1.1\nHost: autodiscover.example.com\n"
     "Content-Type: text/xml\nContent-Length: %d\n\n%s" % (len(body.replace("\n", "\r\n")), body))
xxe = '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a:EMailAddress>&x;</a:EMailAddress>'
http("autodiscover_xxe", "POST /autodiscover/autodiscover.xml HTTP/1.1\nHost: example.com\nContent-Length: %d\n\n%s" % (len(xxe), xxe))
http("autodiscover_chunked", b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"1a\r\n<EMailAddress>a@example.com\r\n10\r\n</EMailAddress>\r\n\r\n0\r\n\r\n")
http("autodiscover_v2_path", "GET /autodiscover/autodiscover.json/v1.0/alice%40example.com?Protocol=AutodiscoverV1 HTTP/1.1\n"
     "Host: autodiscover.example.com\nUser-Agent: Microsoft Office/16.0\n\n")
http("autodiscover_v2_query", "GET /autodiscover/autodiscover.json?Email=alice@example.com&Protocol=ActiveSync&RedirectCount=1 HTTP/1.1\n"
     "Host: example.com\n\n")
http("pacc", "GET /.well-known/user-agent-configuration.json HTTP/1.1\nHost: ua-auto-config.example.com\n\n")
http("mobileconfig", "GET /apple/mobileconfig?email=alice%2Btag%40example.com HTTP/1.1\nHost: mail.example.com\n\n")
http("acme", "GET /.well-known/acme-challenge/abc-DEF_123 HTTP/1.1\nHost: mail.example.com\n\n")
http("keepalive_pipelined", "GET /mail/config-v1.1.xml HTTP/1.1\nHost: autoconfig.example.com\n\n"
     "HEAD /mail/config-v1.1.xml?emailaddress=bad%ff HTTP/1.1\nHost: [::1]:443\n\n"
     "DELETE /apple/mobileconfig HTTP/1.1\nHost: 127.0.0.1\n\n")
http("http10_no_host", "GET /mail/config-v1.1.xml HTTP/1.0\n\n")
http("other_domain", "GET /mail/config-v1.1.xml?emailaddress=eve@evil.example HTTP/1.1\nHost: autoconfig.evil.example\n\n")
http("huge_length", "POST /autodiscover/autodiscover.xml HTTP/1.1\nHost: example.com\nContent-Length: 99999999999\n\n<a>")

# ---------------------------------------------------------------- config (TOML)
example = open(os.path.join(REPO, "yubin.example.toml"), "rb").read()
write("config", "example", example)
write("config", "empty", "")
write("config", "embedded_default", "# yubin's built-in default: every key at its default.\n")
write("config", "minimal", 'hostname = "mail.example.com"\n[storage]\ndata_dir = "/var/lib/yubin"\n'
      '[listen]\nsmtp = ["0.0.0.0:25"]\nimaps = ["[::]:993"]\n')
write("config", "postgres_without_url", '[storage]\nbackend = "postgres"\n')
write("config", "limits", "[limits]\nmax_message_size = 0\nmax_line_length = 100\ntrusted_networks = [\"10.0.0.0/33\", \"::1/128\"]\n")
write("config", "bad_hostname", 'hostname = "bad host\\nname"\n[tls]\ncert = "/x.pem"\n')
write("config", "dkim_queue", '[queue]\nretry_schedule_secs = [60, 300]\n[dkim."example.com"]\nselector = "s1"\nkey = "/k.pem"\n')
write("config", "broken_toml", '[limits\nmax_recipients = "many"\n\x00\xff = 1\n[[listen]]\n')

# IMAP URLs (the knob 0xff gives the whole rest to the URL parser).
imap("url_urlauth", 0xFF, "imap://alice@mail.example.com/INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=1.2.MIME/;PARTIAL=0.1024;EXPIRE=2026-12-24T23:59:59Z;URLAUTH=submit+alice:internal:91354a473744909de610943775f92038")
imap("url_relative", 0xFF, ";UID=20/;SECTION=HEADER.FIELDS%20(From%20Subject)")
imap("url_bad_escape", 0xFF, "imap://%zz@[::1]:99999/%E6%97%A5%E6%9C%AC/;UID=0/;PARTIAL=18446744073709551615.0")

