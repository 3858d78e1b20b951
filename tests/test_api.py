"""The HTTP API (recommender/api): answers equal to the engine's, every error class as one JSON body,
schemathesis fuzzing of the OpenAPI schema and a concurrent run, both against a real uvicorn server."""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from recommender.api import create_app
from recommender.api.errors import public
from recommender.api.uploads import MAX_PHOTO_BYTES, MAX_REQUEST_BYTES
from recommender.images import MAX_PHOTOS_PER_QUERY as MAX_PHOTOS
from recommender.config import Settings
from recommender.images import load_image

REPO = Path(__file__).resolve().parents[1]
KEY = "s3cret-key"


@pytest.fixture(scope="module")
def client(demo_settings, demo_engine):
    with TestClient(create_app(demo_settings, engine=demo_engine)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def picks(demo_engine):
    """Articles with photos, a customer with purchases, filter values: the inputs of the happy paths."""
    articles = demo_engine.catalog.articles
    with_image = articles.loc[articles["has_image"], "article_id"].tolist()
    customers = demo_engine.collab.example_customers(3)
    return {"articles": with_image, "customers": customers, "filters": demo_engine.search.filter_values()}


def photo_bytes(engine, article_id: str) -> bytes:
    return engine.catalog.image_path(article_id).read_bytes()


def assert_same_rows(results: list[dict], frame, columns=("article_id", "score")) -> None:
    assert len(results) == len(frame)
    for column in columns:
        got, want = [r[column] for r in results], frame[column].tolist()
        if column in ("score", "similarity"):
            assert got == pytest.approx(want, abs=1e-6)
        else:
            assert got == want


def assert_close_rows(results: list[dict], frame) -> None:
    """For another process's answer: the same scores (to float noise), ids up to swaps of near-ties
    (thread counts change the order of floating-point sums)."""
    assert [r["score"] for r in results] == pytest.approx(frame["score"].tolist(), abs=1e-3)
    assert len({r["article_id"] for r in results} ^ set(frame["article_id"])) <= 2


def assert_error(response, status: int, code: str, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    message = body["error"]["message"]
    for word in words:
        assert word in message, message
    assert "Traceback" not in message and str(REPO) not in message and "/tmp" not in message, message
    return body


# --- happy paths: the engine's answers -----------------------------------------------------------------


def test_health_ready_and_status(client, demo_engine):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready", **demo_engine.build_info(), "fallbacks": []}
    status = client.get("/v1/status").json()
    want = demo_engine.status()
    assert status["articles"] == want["articles"] == len(demo_engine.catalog.articles)
    assert {k: status[k] for k in ("dataset", "model", "customers", "indexed_by_image")} == {
        k: want[k] for k in ("dataset", "model", "customers", "indexed_by_image")}
    assert status["notices"] == [public(n) for n in demo_engine.notices] and status["notices"]  # the offline fallback
    assert "hf-hub:Marqo/marqo-fashionCLIP could not be loaded" in status["notices"][0]
    assert status["filters"] == demo_engine.search.filter_values()
    text = client.get("/v1/status").text
    assert "data_dir" not in status and public(text) == text  # no server path (checkpoint, caches, data)
    assert status["pretrained"] == "model.pt"  # the catalogue-trained checkpoint, by its name only


def test_text_search_with_filters_negative_and_like(client, demo_engine, picks):
    colour = "Black" if "Black" in picks["filters"]["colour_group_name"] else picks["filters"]["colour_group_name"][0]
    params = [("q", "dress"), ("k", "7"), ("filter", f"colour_group_name:{colour}"), ("negative", "striped"),
              ("like", picks["articles"][0]), ("weight", "0.3")]
    results = client.get("/v1/search", params=params).json()["results"]
    want = demo_engine.search.search(text="dress", filters={"colour_group_name": [colour]}, negative="striped",
                                     like=[picks["articles"][0]], image_weight=0.3, k=7)
    assert_same_rows(results, want, ("article_id", "score", "prod_name", "indexed_by"))
    assert {r["colour_group_name"] for r in results} == {colour}
    assert [r["other_colours"] for r in results] == want["other_colours"].tolist()
    first = results[0]
    assert first["image_url"] == (f"/v1/articles/{first['article_id']}/image" if first["has_image"] else None)


def test_search_groups_by_product_unless_asked_per_article(client, demo_engine):
    grouped = client.get("/v1/search", params={"q": "dress", "k": 10}).json()
    assert grouped["group"] == "product"
    want = demo_engine.search.search(text="dress", k=10)
    assert_same_rows(grouped["results"], want)
    assert [r["other_colours"] for r in grouped["results"]] == want["other_colours"].tolist()
    per_article = client.get("/v1/search", params={"q": "dress", "k": 10, "group": "article"}).json()
    assert per_article["group"] == "article"
    assert_same_rows(per_article["results"], demo_engine.search.search(text="dress", k=10, group="article"))
    assert all(r["other_colours"] == [] for r in per_article["results"])
    assert_error(client.get("/v1/search", params={"q": "dress", "group": "colour"}), 422, "validation", "group")
    assert grouped["facets"] is None
    counted = client.get("/v1/search", params={"q": "dress", "facets": "true"}).json()["facets"]
    assert counted == demo_engine.search.search(text="dress", facets=True).attrs["facets"]


def test_out_of_stock_articles_only_when_asked(client, demo_engine, tmp_path, monkeypatch):
    from recommender.availability import Availability

    first = demo_engine.search.search(text="dress", k=5)["article_id"].iat[0]
    (tmp_path / "availability.csv").write_text(f"article_id,stock\n{first},0\n")
    monkeypatch.setattr(demo_engine.search, "availability", Availability(tmp_path, demo_engine.catalog))
    plain = client.get("/v1/search", params={"q": "dress", "k": 5}).json()["results"]
    assert first not in {r["article_id"] for r in plain} and all(r["available"] for r in plain)
    asked = client.get("/v1/search", params={"q": "dress", "k": 5, "include_unavailable": "true"}).json()["results"]
    assert asked[0]["article_id"] == first and asked[0]["available"] is False


def test_personalised_search_for_a_customer(client, demo_engine, picks):
    cid = picks["customers"][0]
    got = client.get("/v1/search", params={"q": "dress", "k": 8, "customer_id": cid}).json()["results"]
    want = demo_engine.search.search(text="dress", k=8, taste=demo_engine.collab.taste(cid))
    assert_same_rows(got, want)
    assert [r["for_you"] for r in got] == want["for_you"].tolist() and want["for_you"].str.len().gt(0).all()
    assert_error(client.get("/v1/search", params={"q": "dress", "customer_id": "f" * 64}), 404, "unknown_customer")


def test_photo_search_equals_the_engine(client, demo_engine, picks):
    aid = picks["articles"][3]
    data = photo_bytes(demo_engine, aid)
    response = client.post("/v1/search", files=[("photos", ("look.jpg", data, "image/jpeg"))],
                           data={"text": "red", "weight": "0.8", "k": "5"})
    want = demo_engine.search.search(text="red", images=[load_image(data)], image_weight=0.8, k=5)
    assert_same_rows(response.json()["results"], want)
    alone = client.post("/v1/search", files=[("photos", ("look.jpg", data, "image/jpeg"))]).json()["results"]
    assert alone[0]["article_id"] == aid  # its own photo comes first


def test_article_image_and_similar(client, demo_engine, picks):
    aid = picks["articles"][1]
    article = client.get(f"/v1/articles/{int(aid)}").json()  # unpadded ids are accepted
    row = demo_engine.catalog.articles.iloc[demo_engine.catalog.article_row(aid)]
    assert article["article_id"] == aid and article["prod_name"] == row["prod_name"]
    assert article["detail_desc"] == row["detail_desc"] and article["image_url"] == f"/v1/articles/{aid}/image"

    image = client.get(f"/v1/articles/{aid}/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content == photo_bytes(demo_engine, aid)
    assert "max-age" in image.headers["cache-control"]
    again = client.get(f"/v1/articles/{aid}/image", headers={"If-None-Match": image.headers["etag"]})
    assert again.status_code == 304 and again.content == b""

    similar = client.get(f"/v1/articles/{aid}/similar", params={"k": 6}).json()["results"]
    assert_same_rows(similar, demo_engine.search.search(like=[aid], k=6))
    assert aid not in {r["article_id"] for r in similar}


def test_customers_and_recommendations(client, demo_engine, picks):
    collab, cid = demo_engine.collab, picks["customers"][0]
    customer = client.get(f"/v1/customers/{cid.upper()}", params={"limit": 5}).json()
    history = collab.history(cid)
    assert customer["customer_id"] == cid and customer["purchases"] == len(history)
    assert [p["article_id"] for p in customer["history"]] == history["article_id"].head(5).tolist()
    assert customer["history"][0]["t_dat"] == str(history["t_dat"].iloc[0])[:10]

    similar = client.get(f"/v1/customers/{cid}/similar", params={"k": 4}).json()["results"]
    want = collab.similar_customers(cid, k=4)
    assert_same_rows(similar, want, ("customer_id", "similarity", "shared_articles", "shared_types"))

    recs = client.get(f"/v1/customers/{cid}/recommendations", params={"k": 8}).json()
    assert_same_rows(recs["results"], collab.recommend(cid, k=8), ("article_id", "score", "reason"))
    assert all(r["prod_name"] for r in recs["results"])
    # The method the build's backtest chose, said as such; method= asks for another one.
    assert recs["method"] == recs["chosen_method"] == collab.method and recs["chosen_by_backtest"] is True
    for method in ("als", "ensemble", "last purchases + popular"):
        other = client.get(f"/v1/customers/{cid}/recommendations", params={"k": 8, "method": method}).json()
        assert other["method"] == method and other["chosen_method"] == collab.method
        assert_same_rows(other["results"], collab.recommend(cid, k=8, method=method), ("article_id", "score", "reason"))
    assert_error(client.get(f"/v1/customers/{cid}/recommendations", params={"method": "best"}), 422, "validation", "method")

    chosen = picks["articles"][:3]
    fresh = client.post("/v1/recommendations", json={"article_ids": chosen, "k": 5}).json()
    assert fresh["customer_id"] is None and fresh["method"] == "blend"
    assert_same_rows(fresh["results"], collab.recommend_for_items(chosen, k=5), ("article_id", "score", "reason"))


def test_complete_the_look(client, demo_engine, picks):
    aid = picks["articles"][0]
    want = demo_engine.collab.complete_the_look(aid, k=6)
    got = client.get(f"/v1/articles/{aid}/complete", params={"k": 6}).json()
    assert got["article_id"] == aid
    assert_same_rows(got["results"], want, ("article_id", "score", "reason"))
    group = demo_engine.catalog.articles.set_index("article_id")["product_group_name"]
    assert all(group[r["article_id"]] != group[aid] for r in got["results"])
    assert_error(client.get("/v1/articles/0000000001/complete"), 404, "unknown_article")


# --- errors: one JSON body each, the right status, no path ------------------------------------------


def test_bad_input_is_400(client, picks):
    assert_error(client.get("/v1/articles/abc"), 400, "bad_input", "'abc' is not an article id")
    assert_error(client.get("/v1/search"), 400, "bad_input", "nothing to search for")
    assert_error(client.get("/v1/search", params={"q": "dress", "filter": "colour"}), 400, "bad_filter", "column:value")
    assert_error(client.get("/v1/search", params={"q": "dress", "filter": "size:M"}), 400, "bad_input", "cannot filter on 'size'")
    assert_error(client.get("/v1/search", params={"q": "dress", "filter": "colour_group_name:Plaid"}), 400, "bad_input",
                 "colour_group_name 'Plaid' is not in the catalogue")
    assert_error(client.get("/v1/customers/xyz/recommendations"), 400, "bad_customer_id", "64 hexadecimal")
    broken = photo_bytes_of_size(2000)[:700]  # a JPEG cut short
    assert_error(client.post("/v1/search", files=[("photos", ("cut.jpg", broken, "image/jpeg"))]), 400, "bad_photo",
                 "cut.jpg")


def test_unknown_ids_are_404(client, picks):
    assert_error(client.get("/v1/articles/0000000001"), 404, "unknown_article", "article 0000000001 is not in the catalogue")
    assert_error(client.get("/v1/articles/0000000001/similar"), 404, "unknown_article")
    assert_error(client.get("/v1/search", params={"like": "0000000001"}), 404, "unknown_article")
    assert_error(client.post("/v1/recommendations", json={"article_ids": ["0000000001"]}), 404, "unknown_article")
    assert_error(client.get(f"/v1/customers/{'f' * 64}"), 404, "unknown_customer", "ffffffffffff")
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")


def test_limits_are_413_and_not_an_image_is_415(client, demo_engine, picks):
    photo = photo_bytes(demo_engine, picks["articles"][0])
    many = [("photos", (f"p{i}.jpg", photo, "image/jpeg")) for i in range(MAX_PHOTOS + 1)]
    assert_error(client.post("/v1/search", files=many), 413, "too_many_photos", f"limit is {MAX_PHOTOS}")
    huge = photo_bytes_of_size(MAX_PHOTO_BYTES + 1)
    assert_error(client.post("/v1/search", files=[("photos", ("big.bmp", huge, "image/bmp"))]), 413, "photo_too_large",
                 "big.bmp")
    over = b"x" * (MAX_REQUEST_BYTES + 1)
    assert_error(client.post("/v1/search", content=over, headers={"content-type": "multipart/form-data; boundary=b"}),
                 413, "too_large")
    streamed = iter([b"x" * 1_000_000] * (MAX_REQUEST_BYTES // 1_000_000 + 1))  # chunked: no Content-Length
    assert_error(client.post("/v1/search", content=streamed, headers={"content-type": "multipart/form-data; boundary=b"}),
                 413, "too_large")
    assert_error(client.post("/v1/search", files=[("photos", ("notes.txt", b"just some text", "image/jpeg"))]),
                 415, "not_an_image", "notes.txt is not an image")


def test_validation_is_422(client):
    assert_error(client.get("/v1/search", params={"q": "dress", "k": 101}), 422, "validation", "k", "less than or equal to 100")
    assert_error(client.get("/v1/search", params={"q": "dress", "mode": "psychic"}), 422, "validation", "mode")
    assert_error(client.post("/v1/recommendations", json={"article_ids": []}), 422, "validation", "article_ids")
    assert_error(client.get("/v1/search", params={"q": "x" * 1001}), 422, "validation", "q")


def test_api_key_guards_v1_only(demo_settings, demo_engine):
    with TestClient(create_app(demo_settings, engine=demo_engine, api_key=KEY)) as keyed:
        assert keyed.get("/health").status_code == 200 and keyed.get("/ready").status_code == 200
        missing = assert_error(keyed.get("/v1/status"), 401, "unauthorized", "no API key", "X-API-Key")
        assert missing["error"]["message"] and keyed.get("/v1/status").headers["www-authenticate"] == "X-API-Key"
        assert_error(keyed.get("/v1/search", params={"q": "dress"}, headers={"X-API-Key": "guess"}), 401, "unauthorized",
                     "a wrong API key")
        assert keyed.get("/v1/status", headers={"X-API-Key": KEY}).status_code == 200
        assert "APIKeyHeader" in keyed.get("/openapi.json").json()["components"]["securitySchemes"]


def test_cors_is_off_unless_origins_are_configured(client, demo_settings, demo_engine):
    shop = {"Origin": "https://shop.example"}
    assert "access-control-allow-origin" not in client.get("/v1/status", headers=shop).headers
    with TestClient(create_app(demo_settings, engine=demo_engine, cors_origins=["https://shop.example"])) as allowed:
        assert allowed.get("/v1/status", headers=shop).headers["access-control-allow-origin"] == "https://shop.example"
        other = allowed.get("/v1/status", headers={"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers


def test_serve_binds_to_loopback_by_default():
    from recommender.cli import make_parser

    args = make_parser().parse_args(["serve"])
    assert (args.host, args.port, args.workers) == ("127.0.0.1", 8000, 1)


def test_not_built_is_503_without_paths(demo_dir, tmp_path):
    empty = Settings(data_dir=demo_dir, artifacts_dir=tmp_path / "nothing-built-here")
    with TestClient(create_app(empty)) as unbuilt:
        deadline = time.monotonic() + 60
        while (ready := unbuilt.get("/ready")).json()["error"]["code"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert unbuilt.get("/health").status_code == 200
        body = assert_error(ready, 503, "not_built", "python -m recommender build")
        assert str(tmp_path) not in body["error"]["message"] and "nothing-built-here" in body["error"]["message"]
        assert_error(unbuilt.get("/v1/search", params={"q": "dress"}), 503, "not_built")


def test_public_messages_lose_server_paths():
    assert public("article 1 is not in the catalogue (/srv/data/hm/articles.csv)") == \
        "article 1 is not in the catalogue (articles.csv)"
    assert public("run `python -m recommender build --data /srv/hm --artifacts /var/x/art`") == \
        "run `python -m recommender build --data hm --artifacts art`"
    assert public("weight must be 0..1 and/or 3/4") == "weight must be 0..1 and/or 3/4"


def photo_bytes_of_size(size: int) -> bytes:
    """A valid JPEG of about `size` bytes (noise compresses badly) or an uncompressed BMP when larger."""
    import numpy as np

    side = max(16, int((size / 3) ** 0.5) + 1)
    pixels = np.random.default_rng(0).integers(0, 255, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "BMP" if size > 1_000_000 else "JPEG", quality=95)
    return buffer.getvalue()


# --- a real uvicorn server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo_settings, tmp_path_factory):
    """`python -m recommender serve` on a free loopback port; yields its URL once /ready says 200."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, **demo_settings.environment(), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    env.pop("LOOKBOOK_API_KEY", None)
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "recommender", "serve", "--port", str(port)],
                                   cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not become ready:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_real_server_answers_like_the_engine(server, demo_engine, picks):
    with httpx.Client(base_url=server, timeout=30) as http:
        assert http.get("/health").json() == {"status": "ok"}
        text = http.get("/v1/search", params={"q": "blue trousers", "k": 10}).json()["results"]
        assert_close_rows(text, demo_engine.search.search(text="blue trousers", k=10))
        data = photo_bytes(demo_engine, picks["articles"][2])
        photo = http.post("/v1/search", files=[("photos", ("a.jpg", data, "image/jpeg"))], data={"k": "10"}).json()
        assert_close_rows(photo["results"], demo_engine.search.search(images=[load_image(data)], k=10))
        cid = picks["customers"][1]
        recs = http.get(f"/v1/customers/{cid}/recommendations").json()["results"]
        assert_same_rows(recs, demo_engine.collab.recommend(cid), ("article_id", "score", "reason"))
        assert_error(http.get("/v1/articles/0000000001"), 404, "unknown_article")
        docs = http.get("/docs")  # served whole: nothing loaded from another host (offline deployments)
        assert docs.status_code == 200 and "/v1/customers/{customer_id}/recommendations" in docs.text
        assert "http://" not in docs.text and "https://" not in docs.text


def test_fuzzing_the_openapi_schema_finds_no_5xx(server):
    """Every operation of /openapi.json, 15 generated requests each (bounded): never a 5xx, always JSON errors."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings

    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 13  # complete the look included
    statuses = []
    for operation in operations:

        @settings(max_examples=15, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def no_server_error(case):
            response = case.call(base_url=server, timeout=30)
            statuses.append(response.status_code)
            assert response.status_code < 500, (case.method, case.path, response.text[:300])
            if response.status_code >= 400:
                assert set(response.json()) == {"error"}

        no_server_error()
    print(f"fuzzing: {len(statuses)} requests, statuses {sorted(set(statuses))}")
    assert len(statuses) >= 10 * len(operations) and {200, 400, 404, 422} <= set(statuses)


def test_concurrent_clients_get_no_errors(server, demo_engine, picks):
    """8 clients for 20 s of mixed text / photo / customer / similar-article calls; /health stays quick."""
    photo = photo_bytes(demo_engine, picks["articles"][4])
    texts = ["red dress", "black trousers", "striped top", "white shirt", "denim jacket", "blue sweater"]
    calls = [
        lambda http, i: http.get("/v1/search", params={"q": texts[i % len(texts)], "k": 12}),
        lambda http, i: http.post("/v1/search", files=[("photos", ("p.jpg", photo, "image/jpeg"))], data={"k": "12"}),
        lambda http, i: http.get(f"/v1/customers/{picks['customers'][i % 3]}/recommendations"),
        lambda http, i: http.get(f"/v1/articles/{picks['articles'][i % 50]}/similar"),
        lambda http, i: http.get(f"/v1/customers/{picks['customers'][i % 3]}/similar"),
    ]
    done, errors, health = [0] * len(calls), [], []
    stop = time.monotonic() + 20

    def client_loop(number: int) -> None:
        with httpx.Client(base_url=server, timeout=30) as http:
            i = number
            while time.monotonic() < stop:
                kind = i % len(calls)
                try:
                    response = calls[kind](http, i)
                    if response.status_code != 200:
                        errors.append(f"{response.status_code} {response.text[:200]}")
                    else:
                        done[kind] += 1
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                i += 1

    def health_loop() -> None:  # the event loop is never blocked by searches: /health answers within 5 s
        with httpx.Client(base_url=server, timeout=5) as http:
            while time.monotonic() < stop:
                try:
                    health.append(http.get("/health").status_code)
                except httpx.HTTPError as exc:
                    health.append(repr(exc))
                time.sleep(0.5)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(8)] + [threading.Thread(target=health_loop)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(count > 0 for count in done), done
    assert health and set(health) == {200}, health
