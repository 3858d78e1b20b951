"""Hostile but fair input: each case gets one clear message (a LookbookError, one `error:` line from the
CLI with exit status 2), never a traceback; property tests throw random rows, bytes and queries at the
readers. The probe's cases: CSV encodings and values, images, CLI flags and queries."""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import unicodedata
import zlib
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from recommender import cli, pipeline, runtime, textfiles
from recommender.catalog import REQUIRED_ARTICLE_COLUMNS, load_catalog
from recommender.errors import DataError, InputError
from recommender.images import ALLOWED_FORMATS, MAX_IMAGE_BYTES, load_image, thumbnail_for_model
from recommender.inputs import clean_text
from recommender.textfiles import decode_text

REPO = Path(__file__).resolve().parents[1]
CUSTOMER = "a" * 64
ARTICLES_HEADER = ",".join(REQUIRED_ARTICLE_COLUMNS)
TRANSACTIONS_HEADER = "t_dat,customer_id,article_id,price,sales_channel_id"


def article(number: int, name: str = "Strap top", desc: str = "Jersey top") -> str:
    return f"{number:010d},{name},Vest top,Garment Upper body,Solid,Black,Ladieswear,{desc}"


def sale(day: str, number: int = 1, price: str = "0.0169", channel: str = "2") -> str:
    return f"{day},{CUSTOMER},{number:010d},{price},{channel}"


def folder(tmp_path: Path, articles: bytes, transactions: bytes | None = None, customers: bytes | None = None) -> Path:
    root = tmp_path / "shop"
    root.mkdir(exist_ok=True)
    (root / "articles.csv").write_bytes(articles)
    for name, data in (("transactions_train.csv", transactions), ("customers.csv", customers)):
        if data is not None:
            (root / name).write_bytes(data)
    return root


def lines(*rows: str, encoding: str = "utf-8") -> bytes:
    return ("\n".join(rows) + "\n").encode(encoding)


# --- CSV files: encodings --------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_legacy_encoded_articles_are_read_with_a_notice(tmp_path, encoding):
    root = folder(tmp_path, lines(ARTICLES_HEADER, article(1), article(2, "Café crème blouse"), encoding=encoding))
    catalog = load_catalog(root)
    assert catalog.articles["prod_name"].tolist() == ["Strap top", "Café crème blouse"]
    assert catalog.notices == [
        f"{root / 'articles.csv'} is not UTF-8; it was read as Windows-1252 (Latin-1) text, e.g. line 3: "
        f"'{article(2, 'Café crème blouse')[:59]}…'. Save it as UTF-8 to be sure every character is read as meant"
    ]


def test_notices_survive_the_parquet_cache(tmp_path):
    root = folder(tmp_path, lines(ARTICLES_HEADER, article(1, "Crêpe dress"), encoding="cp1252"))
    first = load_catalog(root, cache_dir=tmp_path / "artifacts")
    again = load_catalog(root, cache_dir=tmp_path / "artifacts")
    assert again.notices == first.notices and "Windows-1252" in again.notices[0]


def test_utf8_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
    catalog = load_catalog(folder(tmp_path, b"\xef\xbb\xbf" + lines(ARTICLES_HEADER, article(7))))
    assert catalog.articles["article_id"].tolist() == ["0000000007"] and catalog.notices == []


def test_utf16_with_byte_order_mark_is_read(tmp_path):
    catalog = load_catalog(folder(tmp_path, lines(ARTICLES_HEADER, article(3, "Ärmel"), encoding="utf-16")))
    assert catalog.articles["prod_name"].tolist() == ["Ärmel"]
    assert "UTF-16" in catalog.notices[0]


CSV_CASES = {
    "mixed encodings in articles": (
        dict(articles=lines(ARTICLES_HEADER, article(1, "Crème")) + article(2, "Caf\xe9").encode("cp1252")),
        r"articles\.csv, line 3, column 15: byte 0xE9 is not UTF-8 text, and the file is not in one other "
        r"encoding either \(it mixes encodings or holds binary data\); save it as UTF-8",
    ),
    "binary file as articles": (
        dict(articles=b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x81\x8d\x8f\x90\x9d"),
        r"articles\.csv, line 1, column 1: byte 0x89 is not UTF-8 text",
    ),
    "line number after a quoted line break": (
        dict(articles=lines(ARTICLES_HEADER, article(1, desc='"two\nlines"'), article(2), "12ab" + article(3)[10:])),
        r"articles\.csv, line 5, column article_id: '12ab' is not an article id",
    ),
    "duplicate after a quoted line break": (
        dict(articles=lines(ARTICLES_HEADER, article(1, desc='"a\n\nb"'), article(1))),
        r"articles\.csv, line 5, column article_id: article 0000000001 appears twice",
    ),
    "NaN price": (
        dict(transactions=lines(TRANSACTIONS_HEADER, sale("2020-01-01"), sale("2020-01-02", price="NaN"))),
        r"transactions_train\.csv, line 3, column price: 'nan' is not a number \(a price\)",
    ),
    "infinite price": (
        dict(transactions=lines(TRANSACTIONS_HEADER, sale("2020-01-01", price="inf"))),
        r"transactions_train\.csv, line 2, column price: 'inf' is not a number",
    ),
    "NULL price": (
        dict(transactions=lines(TRANSACTIONS_HEADER, sale("2020-01-01"), sale("2020-01-01", price="NULL"))),
        r"transactions_train\.csv, line 3, column price: 'NULL' is not a number",
    ),
    "sales channel out of range": (
        dict(transactions=lines(TRANSACTIONS_HEADER, sale("2020-01-01"), sale("2020-01-02", channel="300"))),
        r"transactions_train\.csv, line 3, column sales_channel_id: '300' is not a small integer \(-128 to 127\)",
    ),
    "bad UTF-8 in transactions": (
        dict(transactions=lines(TRANSACTIONS_HEADER, sale("2020-01-01")) + sale("2020-01-02").encode()[:-6] + b"\xe9,2\n"),
        r"transactions_train\.csv, line 3, column price: byte 0xE9 in '0\.\ufffd' is not UTF-8 text",
    ),
    "a transaction in the future": (
        dict(transactions=lines(TRANSACTIONS_HEADER, sale("2020-01-01"), sale("2099-01-01"), sale("2020-01-02"))),
        r"transactions_train\.csv, line 3, column t_dat: 2099-01-01 is in the future \(today is \d{4}-\d\d-\d\d\); "
        r"correct or remove the row",
    ),
    "a stray date years after the rest": (
        dict(transactions=lines(TRANSACTIONS_HEADER, *[sale(f"2020-01-{d:02d}") for d in range(1, 20)],
                                sale("2024-06-01"))),
        r"line 21, column t_dat: 2024-06-01 is more than 365 days after almost all other transactions "
        r"\(which end by 2020-01-19\)",
    ),
    "bad customer id in a legacy-encoded customers file": (
        dict(customers=lines("customer_id,postal_code", f"{CUSTOMER},Zürich", "nobody,Genève", encoding="cp1252")),
        r"customers\.csv, line 3, column customer_id: 'nobody' is not a customer id",
    ),
}


@pytest.mark.parametrize("files, message", CSV_CASES.values(), ids=CSV_CASES.keys())
def test_malformed_csv_gets_one_message_naming_file_and_line(tmp_path, files, message):
    files = {"articles": lines(ARTICLES_HEADER, article(1)), **files}
    with pytest.raises(DataError, match=message):
        load_catalog(folder(tmp_path, **files))


def test_malformed_row_that_is_not_utf8_gets_one_message_and_no_traceback(tmp_path, capfd):
    transactions = lines(TRANSACTIONS_HEADER, sale("2020-01-01")) + b"2020-01-02,\xe9\xe9,x\n"
    with pytest.raises(DataError, match=r"line 3, column customer_id: byte 0xE9 in '\ufffd\ufffd' is not UTF-8"):
        load_catalog(folder(tmp_path, lines(ARTICLES_HEADER, article(1)), transactions))
    assert "Traceback" not in capfd.readouterr().err


def test_now_is_the_latest_real_date(tmp_path):
    catalog = load_catalog(folder(tmp_path, lines(ARTICLES_HEADER, article(1)),
                                  lines(TRANSACTIONS_HEADER, sale("2020-03-02"), sale("2020-01-01"))))
    assert str(catalog.now)[:10] == "2020-03-02"


# --- images ----------------------------------------------------------------------------------------


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


PHOTO = encoded(Image.effect_noise((64, 64), 40).convert("RGB"), "JPEG")
IMAGE_CASES = {
    "text file named .jpg": (b"a red dress, size 38\n", r"is not an image in an accepted format \(JPEG, PNG, WEBP"),
    "EPS": (encoded(Image.new("RGB", (8, 8)), "EPS"), r"is a PostScript/EPS file, which is not accepted"),
    "PDF": (encoded(Image.new("RGB", (8, 8)), "PDF"), r"is a PDF document, which is not accepted"),
    "PSD signature": (b"8BPS\x00\x01" + b"\x00" * 40, r"is a Photoshop \(PSD\) file, which is not accepted"),
    "ICO": (encoded(Image.new("RGB", (16, 16)), "ICO"), r"is a Windows icon \(ICO\), which is not accepted"),
    "truncated JPEG": (PHOTO[: len(PHOTO) // 2], r"is a corrupt or truncated image"),
    "truncated PNG": (encoded(Image.effect_noise((64, 64), 40), "PNG")[:120], r"is a corrupt or truncated image"),
    "40 MP limit": (png_claiming(9000, 9000), r"is 9000x9000 pixels; the limit is 40 megapixels"),
    "decompression bomb": (png_claiming(40000, 40000), r"has more than \d+ megapixels; the limit is 40 megapixels"),
    "over 20 MiB": (b"\xff\xd8" + b"\x00" * MAX_IMAGE_BYTES, r"is 20\.1 MiB; the limit is 20 MiB per image"),
    "empty": (b"", r"is empty \(0 bytes\)"),
}


@pytest.mark.parametrize("data, message", IMAGE_CASES.values(), ids=IMAGE_CASES.keys())
def test_bad_image_gets_one_message(data, message):
    for decode in (load_image, thumbnail_for_model):
        with pytest.raises(InputError, match=r"^upload\.jpg " + message):
            decode(data, name="upload.jpg")


def test_only_allow_listed_decoders_are_reachable():
    assert set(ALLOWED_FORMATS) <= {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF"}


def test_text_stream_instead_of_bytes():
    with pytest.raises(InputError, match="expected binary image data, got str"):
        load_image(io.StringIO("not bytes"), name="photo.jpg")


# --- CLI: flags and queries ------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recommender", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=os.environ | {"PYTHONIOENCODING": "utf-8"})


@pytest.mark.parametrize("args, message", [
    (["search", "-k", "0", "--text", "red dress"], "error: -k must be a whole number from 1 to 1000, not 0"),
    (["similar-customers", "--customer", CUSTOMER, "-k", "-5"], "error: -k must be a whole number from 1 to 1000, not -5"),
    (["search", "--text", "\u200b\u200b"], "error: --text is only invisible characters or spaces; type what you are "
                                           "looking for, e.g. 'red summer dress'"),
])  # fmt: skip
def test_cli_refuses_bad_flags_in_one_line(args, message):
    done = run_cli(*args)
    assert (done.returncode, done.stderr, done.stdout) == (2, message + "\n", "")


def test_too_many_query_photos(monkeypatch, capsys):
    monkeypatch.setattr(runtime, "configure_threads", lambda *args, **kwargs: None)
    assert cli.main(["search", "--image", *[f"look{i}.jpg" for i in range(5)]]) == 2
    assert capsys.readouterr().err == "error: --image: 5 photos; a query takes at most 4\n"


def test_cli_refuses_an_eps_query_photo_before_opening_anything(tmp_path):
    eps = tmp_path / "look.jpg"
    eps.write_bytes(encoded(Image.new("RGB", (8, 8)), "EPS"))
    done = run_cli("search", "--image", str(eps), "--data", str(tmp_path / "no-such-folder"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: look.jpg is a PostScript/EPS file, which is not accepted")
    assert done.stderr.count("\n") == 1


def test_cli_reads_a_utf16_customers_file_and_says_so(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_bytes(f"{CUSTOMER}\r\n".encode("utf-16"))
    done = run_cli("recommend", "--customers-file", str(ids), "--data", str(tmp_path / "missing"))
    assert done.returncode == 2
    notice, error = done.stderr.splitlines()
    assert notice == f"notice: --customers-file {ids} is UTF-16 text; it was read as such"
    assert error.startswith(f"error: LOOKBOOK_DATA / --data: the dataset folder {tmp_path / 'missing'} does not exist")


@pytest.mark.parametrize("chunk_bytes", [3, 5, 1 << 22])
def test_bad_byte_position_is_exact_across_read_chunks(tmp_path, monkeypatch, chunk_bytes):
    monkeypatch.setattr(textfiles, "CHUNK_BYTES", chunk_bytes)
    path = tmp_path / "ids.txt"
    path.write_bytes("añb\nçéè x".encode() + b"\xff\n")
    assert textfiles.first_bad_utf8(path) == textfiles.BadByte(offset=13, line=2, column=6, value=0xFF)
    path.write_bytes("añb\nçéè".encode())
    assert textfiles.first_bad_utf8(path) is None


def test_customers_file_mixing_encodings_names_the_line():
    with pytest.raises(DataError, match=r"^ids\.txt, line 2, column 3: byte 0xE9 is not UTF-8 text"):
        decode_text(f"{CUSTOMER}\n".encode() + "ab\xe9\n".encode("cp1252") + "é\n".encode(), "ids.txt")


@pytest.mark.parametrize("query, message", [
    ("", "--text is empty"),
    (" \t\n", "--text is only invisible characters or spaces"),
    ("\ufeff\u200d", "--text is only invisible characters or spaces"),
    ("red\x1b[2Jdress", r"--text holds a control character \(U\+001B at character 4\)"),
    ("red\x00", r"--text holds a control character \(U\+0000 at character 4\)"),
    ("caf\udce9", r"--text is not valid text: it holds bytes that are not UTF-8 \(at character 4\)"),
    ("dress " * 200, "--text is 1199 characters long; the limit is 1000"),
])  # fmt: skip
def test_unusable_queries_are_refused(query, message):
    with pytest.raises(InputError, match=message):
        clean_text(query, "--text")


def test_invisible_characters_are_dropped_from_a_real_query():
    assert clean_text("red\u200b  summer\tdress\ufeff") == "red summer dress"


# --- property tests ----------------------------------------------------------------------------------

# Deterministic (the same examples every run, so CI cannot turn red by chance) and small, for speed.
FAST = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
CELL = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(['"', '""', "\n", ",", "0000000001", ""])


@FAST
@given(rows=st.lists(st.lists(CELL, min_size=0, max_size=10), max_size=6), encoding=st.sampled_from(["utf-8", "cp1252"]))
def test_any_articles_rows_load_or_raise_data_error(tmp_path, rows, encoding):
    text = "\n".join([ARTICLES_HEADER] + [",".join(row) for row in rows])
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    try:
        catalog = load_catalog(folder(tmp_path, data))
    except DataError as exc:
        assert "articles.csv" in str(exc)
    else:
        assert catalog.articles["article_id"].str.fullmatch(r"\d{10}").all()


@FAST
@given(data=st.binary(max_size=300), header=st.booleans())
def test_any_bytes_as_transactions_load_or_raise_data_error(tmp_path, data, header):
    transactions = (TRANSACTIONS_HEADER + "\n").encode() + data if header else data
    try:
        catalog = load_catalog(folder(tmp_path, lines(ARTICLES_HEADER, article(1)), transactions))
    except DataError as exc:
        assert "transactions_train.csv" in str(exc)
    else:
        assert catalog.transactions is not None


TRANSACTION_CELL = st.sampled_from([
    "2020-01-01", "2019-12-31", "2099-01-01", "2020-02-30", "", "NaN", "NULL", "1e400", "-1", "0.0169", "300",
    CUSTOMER, CUSTOMER.upper(), "0000000001", "1", "0000000002", '"', '"a\nb"', "é", "\t", " 2 ",
]) | st.text(max_size=6)  # fmt: skip


@FAST
@given(rows=st.lists(st.lists(TRANSACTION_CELL, min_size=4, max_size=6), max_size=8))
def test_any_transaction_rows_load_or_raise_data_error(tmp_path, rows):
    text = "\n".join([TRANSACTIONS_HEADER] + [",".join(row) for row in rows])
    try:
        catalog = load_catalog(folder(tmp_path, lines(ARTICLES_HEADER, article(1)), text.encode()))
    except DataError as exc:
        assert "transactions_train.csv" in str(exc)
    else:
        assert catalog.now is None or str(catalog.now) <= str(date.today() + timedelta(days=1))


@FAST
@given(data=st.binary(max_size=400))
def test_any_bytes_as_an_image_decode_or_raise_input_error(data):
    try:
        image = load_image(data, name="x")
    except InputError as exc:
        assert str(exc).startswith("x ")
    else:
        assert image.mode == "RGB"


@FAST
@given(query=st.text(max_size=40))
def test_any_query_is_cleaned_or_refused_and_the_cli_answers_in_one_line(query, demo_settings, demo_engine,
                                                                         monkeypatch, capsys):
    try:
        cleaned = clean_text(query)
    except InputError:
        cleaned = None
    else:
        assert cleaned and cleaned == " ".join(cleaned.split())  # white space collapsed
        assert not any(unicodedata.category(char) in ("Cc", "Cf", "Cs") for char in cleaned)
    # The whole CLI path against the built demo, in this process (thread limits are process-wide: left as
    # the tests set them; the engine already open is the one the command would open).
    monkeypatch.setattr(runtime, "configure_threads", lambda *args, **kwargs: None)
    monkeypatch.setattr(pipeline, "open_engine", lambda settings: demo_engine)
    code = cli.main(["search", f"--text={query}", "--json", "-k", "3", "--data", str(demo_settings.data_dir),
                     "--artifacts", str(demo_settings.artifacts_dir)])
    out, err = capsys.readouterr()
    if cleaned is None:
        assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and not out, err
    else:  # a usable query: results, or one line saying why not (e.g. too long for the model)
        assert (code == 0 and len(out.splitlines()) == 3) or (code == 2 and err.count("\n") == 1), (code, out, err)
