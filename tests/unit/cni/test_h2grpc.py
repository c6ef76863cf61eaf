"""HPACK pieces of the plugin's HTTP/2 client, against RFC 7541's worked examples."""

from __future__ import annotations

import pytest

from cni.h2grpc import H2Unsupported, HpackDecoder, _encode_int, encode_headers


def test_integer_encoding_rfc7541_c1() -> None:
    assert _encode_int(10, 5, 0) == bytes([0x0A])
    assert _encode_int(1337, 5, 0) == bytes([0x1F, 0x9A, 0x0A])
    assert HpackDecoder._int(bytes([0x1F, 0x9A, 0x0A]), 0, 5) == (1337, 3)


def test_requests_with_dynamic_table_rfc7541_c3() -> None:
    decoder = HpackDecoder()
    first = bytes.fromhex("828684410f7777772e6578616d706c652e636f6d")
    second = bytes.fromhex("828684be58086e6f2d6361636865")
    third = bytes.fromhex("828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565")
    assert decoder.decode(first) == [
        (":method", b"GET"),
        (":scheme", b"http"),
        (":path", b"/"),
        (":authority", b"www.example.com"),
    ]
    got = decoder.decode(second)
    assert got[3:] == [(":authority", b"www.example.com"), ("cache-control", b"no-cache")]
    got = decoder.decode(third)
    assert got[1:] == [
        (":scheme", b"https"),
        (":path", b"/index.html"),
        (":authority", b"www.example.com"),
        ("custom-key", b"custom-value"),
    ]


def test_huffman_strings_are_out_of_scope() -> None:
    huffman = bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff")
    with pytest.raises(H2Unsupported):
        HpackDecoder().decode(huffman)


def test_our_encoding_decodes() -> None:
    headers = [(":path", "/gingham.v1.Dataplane/AddWorkload"), ("x" * 200, "y" * 300)]
    decoded = HpackDecoder().decode(encode_headers(headers))
    assert decoded == [(n, v.encode()) for n, v in headers]
