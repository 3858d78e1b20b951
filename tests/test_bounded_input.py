"""Hostile photos cost a bounded amount, in the app, the CLI and the API alike (they share
`images.thumbnail_for_model`): each case below is refused or decoded within a stated peak memory, measured
in a fresh process (ru_maxrss), and refused cases are refused before any pixel is decoded."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recommender.api.errors import ApiError
from recommender.api.uploads import check_request_pixels, decode_photo
from recommender.errors import InputError
from recommender.images import MAX_ASPECT_RATIO, thumbnail_for_model

REPO = Path(__file__).resolve().parents[1]
PEAK_MB = 400  # extra peak memory allowed for decoding one 40-megapixel photo (4 photos: one at a time)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def peak_of_decoding(tmp_path, data: bytes, copies: int) -> dict:
    """Peak RSS growth and sizes of `decode_photo` on `copies` of ``data``, one after the other, in a fresh process."""
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    script = (
        "import json, resource, sys\n"
        "from recommender.api.uploads import decode_photo\n"
        f"data = open({str(path)!r}, 'rb').read()\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"sizes = [decode_photo(data, 'p.png').size for _ in range({copies})]\n"
        "print(json.dumps({'sizes': sizes, 'peak_mb': (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_long_thin_strip_is_refused_before_decoding():
    # 270 bytes of PNG that a keep-ratio resize would blow up to millions of pixels.
    strip = png(Image.new("RGB", (65500, 1)))
    with pytest.raises(InputError, match=f"65500x1 pixels: too long and narrow .* at most {MAX_ASPECT_RATIO} times"):
        thumbnail_for_model(strip, name="strip.png")
    with pytest.raises(ApiError) as refused:
        decode_photo(strip, "strip.png")
    assert refused.value.status == 413 and "too long and narrow" in str(refused.value)
    assert thumbnail_for_model(png(Image.new("RGB", (400, 20))), name="ok.png").size == (400, 20)  # 20:1 passes


@pytest.mark.parametrize("kind", ["40 MP RGB", "16-bit 8000x5000"])
def test_large_photos_decode_to_model_size_within_a_stated_peak(tmp_path, kind):
    image = (Image.new("RGB", (8000, 5000), "red") if kind == "40 MP RGB"
             else Image.fromarray(np.full((5000, 8000), 40000, np.uint16)))
    data = png(image)
    assert len(data) < 200_000  # compressible: passes every byte limit
    measured = peak_of_decoding(tmp_path, data, copies=4)
    assert measured["sizes"] == [[448, 280]] * 4  # model size, never kept at full resolution
    assert measured["peak_mb"] < PEAK_MB, measured


def test_sixteen_bit_photo_keeps_its_picture():
    grey = thumbnail_for_model(png(Image.fromarray(np.full((50, 80), 40000, np.uint16))), name="grey.png")
    assert grey.mode == "RGB" and grey.getpixel((10, 10)) == (156, 156, 156)  # 40000 / 256, not clipped white


def test_a_request_with_too_many_pixels_together_is_refused_from_the_headers():
    big = png(Image.new("RGB", (8000, 5000)))
    check_request_pixels([(big, "a.png"), (big, "b.png")])  # 80 MP together: allowed
    with pytest.raises(ApiError) as refused:
        check_request_pixels([(big, f"{n}.png") for n in range(4)])
    assert refused.value.status == 413 and "160 megapixels together" in str(refused.value)


@pytest.mark.parametrize("kind, expected", [("EPS", 415), ("ICO", 415)])
def test_refused_formats_are_415_in_the_api(kind, expected):
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, kind)
    with pytest.raises(ApiError) as refused:
        decode_photo(buffer.getvalue(), f"look.{kind.lower()}")
    assert refused.value.status == expected and "not accepted" in str(refused.value)


# --- the API's request bodies and echoes -----------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_client(demo_settings, demo_engine):
    from fastapi.testclient import TestClient

    from recommender.api import create_app

    with TestClient(create_app(demo_settings, engine=demo_engine, api_key="s3cret")) as client:
        yield client


def test_a_huge_json_body_is_refused_before_it_is_read(keyed_client):
    # 32 MiB of nested lists: refused from its declared length, before parsing (and, without the key,
    # before anything else).
    body = b"[" * 16 * 2**20 + b"]" * 16 * 2**20
    headers = {"content-type": "application/json", "X-API-Key": "s3cret"}
    too_large = keyed_client.post("/v1/recommendations", content=body, headers=headers)
    assert too_large.status_code == 413 and "64 KiB for JSON" in too_large.json()["error"]["message"]
    no_key = keyed_client.post("/v1/recommendations", content=body, headers={"content-type": "application/json"})
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "unauthorized"


def test_error_messages_clip_what_they_echo(keyed_client):
    value = "x" * 15_000
    response = keyed_client.get("/v1/search", params={"q": "dress", "filter": f"colour_group_name:{value}"},
                                headers={"X-API-Key": "s3cret"})
    assert response.status_code == 400 and len(response.text) < 2_000
    assert keyed_client.head("/health").status_code == 200


def test_a_photo_sent_as_a_text_field_is_named_in_plain_words(keyed_client):
    response = keyed_client.post("/v1/search", data={"photos": "abc", "text": "red"}, headers={"X-API-Key": "s3cret"})
    message = response.json()["error"]["message"]
    assert response.status_code == 422 and "must be a file upload" in message and "UploadFile" not in message


def test_a_body_that_stops_arriving_is_answered_408(monkeypatch):
    # The ASGI middleware alone, given a client whose body never comes (the server's receive() blocks):
    # the connection is answered and freed after the timeout instead of being held.
    import asyncio

    from recommender.api import app as app_module

    monkeypatch.setattr(app_module, "BODY_TIMEOUT_S", 0.2)

    async def reads_the_body(scope, receive, send):
        await receive()

    async def never():
        await asyncio.Event().wait()

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/recommendations", "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")]}
    asyncio.run(app_module.BodyLimit(reads_the_body, limit=1000)(scope, never, send))
    assert sent[0]["status"] == 408 and b"did not arrive within 0.2 s" in sent[1]["body"]


def test_headers_that_trickle_in_are_answered_408(monkeypatch):
    # A real uvicorn on a loopback socket with serve's protocol: a client sending its headers a byte at a
    # time (each byte would reset uvicorn's keep-alive timer) is answered 408 and disconnected at the
    # deadline; headers that arrive in time, in parts and on a kept-alive connection, are answered.
    import socket
    import threading
    import time

    import uvicorn

    from recommender.api import server as server_module

    monkeypatch.setattr(server_module, "HEADER_TIMEOUT_S", 0.5)

    async def hello(scope, receive, send):
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(hello, http=server_module.HeaderTimeoutProtocol, log_level="warning",
                                           timeout_keep_alive=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        with socket.create_connection(listener.getsockname(), timeout=5) as stalled:  # headers begun, never ended
            begin = time.monotonic()
            stalled.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
            assert stalled.recv(1000).startswith(b"HTTP/1.1 408") and stalled.recv(1000) == b""
            assert 0.4 < time.monotonic() - begin < 1.5
        with socket.create_connection(listener.getsockname(), timeout=5) as trickle:
            begin, ended = time.monotonic(), False
            trickle.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            trickle.settimeout(0.1)
            while not ended and time.monotonic() - begin < 3:
                try:
                    trickle.sendall(b"a")
                    ended = trickle.recv(1000) == b""
                except TimeoutError:
                    continue
                except OSError:  # reset: a byte reached the closed connection
                    ended = True
            assert ended and time.monotonic() - begin < 1.5

        with socket.create_connection(listener.getsockname(), timeout=5) as fine:
            for _ in range(2):  # two requests on one connection, each's headers in two parts
                fine.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
                time.sleep(0.3)
                fine.sendall(b"\r\n")
                answer = b""
                while not answer.endswith(b"\r\n\r\nok"):  # the head and the body may come apart
                    chunk = fine.recv(1000)
                    assert chunk, answer
                    answer += chunk
                assert answer.startswith(b"HTTP/1.1 200")
                time.sleep(0.3)  # idle between requests: 0.6 s from the first one's start, past the deadline
    finally:
        server.should_exit = True
        thread.join(timeout=10)
