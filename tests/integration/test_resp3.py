"""RESP3 as redis-server 7.0 writes it, byte for byte, over raw sockets
(redis-py 4.3.4 has no RESP3; redis-cli -3 is covered in test_redis_cli)."""
import re

import pytest

from conftest import encode_command


def hello3_pattern(proto=3):
    return re.compile(
        rb"%7\r\n"
        rb"\$6\r\nserver\r\n\$(\d+)\r\n([^\r]+)\r\n"
        rb"\$7\r\nversion\r\n\$(\d+)\r\n(\d+\.\d+\.\d+)\r\n"
        rb"\$5\r\nproto\r\n:" + str(proto).encode() + rb"\r\n"
        rb"\$2\r\nid\r\n:(\d+)\r\n"
        rb"\$4\r\nmode\r\n\$10\r\nstandalone\r\n"
        rb"\$4\r\nrole\r\n\$6\r\nmaster\r\n"
        rb"\$7\r\nmodules\r\n\*0\r\n")


@pytest.fixture
def x3(server, r):
    c = server.raw()
    data = c.call("HELLO", "3")
    m = hello3_pattern().fullmatch(data)
    assert m, data
    yield c
    c.close()


def test_hello3_map(server, r):
    c = server.raw()
    cid = c.call_parsed("CLIENT", "ID")
    data = c.call("HELLO", "3")
    m = hello3_pattern().fullmatch(data)
    assert m, data
    assert int(m.group(1)) == len(m.group(2)) and int(m.group(3)) == len(m.group(4))
    assert int(m.group(5)) == cid
    assert m.group(2) == b"redis"  # what clients expect to find here
    # HELLO with no argument in RESP3 answers a map too
    assert hello3_pattern().fullmatch(c.call("HELLO"))
    # back to RESP2: a flat array
    data = c.call("HELLO", "2")
    assert data.startswith(b"*14\r\n$6\r\nserver\r\n")
    assert c.call("GET", "nokey") == b"$-1\r\n"


def test_nulls(x3):
    assert x3.call("GET", "nokey") == b"_\r\n"
    assert x3.call("MGET", "a", "b") == b"*2\r\n_\r\n_\r\n"
    x3.call("SET", "a", "1")
    assert x3.call("MGET", "a", "b") == b"*2\r\n$1\r\n1\r\n_\r\n"
    assert x3.call("SET", "a", "2", "NX") == b"_\r\n"
    assert x3.call("SET", "zz", "2", "XX") == b"_\r\n"
    assert x3.call("SET", "new", "v", "GET") == b"_\r\n"
    assert x3.call("SET", "a", "3", "GET") == b"$1\r\n1\r\n"
    assert x3.call("GETDEL", "nokey") == b"_\r\n"
    assert x3.call("GETEX", "nokey") == b"_\r\n"
    assert x3.call("GETSET", "nokey2", "v") == b"_\r\n"
    assert x3.call("CLIENT", "GETNAME") == b"_\r\n"
    assert x3.call("OBJECT", "ENCODING", "nokey") == b"_\r\n"
    assert x3.call("MEMORY", "USAGE", "nokey") == b"_\r\n"
    x3.call("FLUSHDB")
    assert x3.call("RANDOMKEY") == b"_\r\n"


def test_scalars(x3):
    assert x3.call("PING") == b"+PONG\r\n"
    assert x3.call("ECHO", "hi") == b"$2\r\nhi\r\n"
    assert x3.call("SET", "a", "1") == b"+OK\r\n"
    assert x3.call("EXISTS", "a") == b":1\r\n"
    assert x3.call("INCR", "a") == b":2\r\n"
    # INCRBYFLOAT replies a bulk string, not a RESP3 double
    assert x3.call("INCRBYFLOAT", "f", "1.5") == b"$3\r\n1.5\r\n"
    assert x3.call("TTL", "a") == b":-1\r\n"
    assert x3.call("TYPE", "a") == b"+string\r\n"
    assert x3.call("KEYS", "nomatch*") == b"*0\r\n"
    assert x3.err("GET") == "ERR wrong number of arguments for 'get' command"


def test_scan_reply_shape(x3):
    assert x3.call("SCAN", "0") == b"*2\r\n$1\r\n0\r\n*0\r\n"
    x3.call("SET", "only", "1")
    assert x3.call("SCAN", "0") == b"*2\r\n$1\r\n0\r\n*1\r\n$4\r\nonly\r\n"


def test_config_get_is_a_map(x3):
    assert x3.call("CONFIG", "GET", "maxmemory") == b"%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"
    assert x3.call("CONFIG", "GET", "maxmemory-polic?") == \
        b"%1\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n"
    assert x3.call("CONFIG", "GET", "nosuch*") == b"%0\r\n"
    d = x3.call_parsed("CONFIG", "GET", "max*")
    assert isinstance(d, dict) and b"maxmemory" in d and b"maxclients" in d


def test_info_and_client_list_are_verbatim(x3):
    data = x3.call("INFO", "keyspace")
    assert data == b"=16\r\ntxt:# Keyspace\r\n\r\n"
    data = x3.call("CLIENT", "INFO")
    m = re.fullmatch(rb"=(\d+)\r\ntxt:(id=\d+ [^\r]*resp=3\n)\r\n", data)
    assert m and int(m.group(1)) == 4 + len(m.group(2)), data
    assert x3.call("CLIENT", "LIST", "ID", "999999") == b"=4\r\ntxt:\r\n"


def test_time_and_slowlog_shapes(x3):
    data = x3.call("TIME")
    assert re.fullmatch(rb"\*2\r\n\$\d+\r\n\d+\r\n\$\d+\r\n\d+\r\n", data)
    x3.call("SLOWLOG", "RESET")
    assert x3.call("SLOWLOG", "GET", "0") == b"*0\r\n"


def test_command_info_uses_sets(x3):
    data = x3.call("COMMAND", "INFO", "get")
    assert data.startswith(b"*1\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n~3\r\n"
                           b"+@read\r\n+@string\r\n+@fast\r\n")
    assert x3.call("COMMAND", "INFO", "nosuchcmd") == b"*1\r\n_\r\n"


def test_command_docs_is_a_map(x3):
    data = x3.call("COMMAND", "DOCS", "get")
    assert data.startswith(b"%1\r\n$3\r\nget\r\n%5\r\n$7\r\nsummary\r\n$22\r\nGet the value of a key\r\n"
                           b"$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n")
    assert x3.call("COMMAND", "DOCS", "nosuchcmd") == b"%0\r\n"


def test_resp3_pipeline(x3):
    x3.send(b"".join(encode_command("SET", "k%d" % i, i) for i in range(200)) +
            b"".join(encode_command("GET", "k%d" % i) for i in range(200)) + encode_command("GET", "none"))
    for i in range(200):
        assert x3.reply_bytes() == b"+OK\r\n"
    for i in range(200):
        s = str(i).encode()
        assert x3.reply_bytes() == b"$%d\r\n%s\r\n" % (len(s), s)
    assert x3.reply_bytes() == b"_\r\n"


def test_reset_returns_to_resp2(x3):
    assert x3.call("RESET") == b"+RESET\r\n"
    assert x3.call("GET", "nokey") == b"$-1\r\n"
