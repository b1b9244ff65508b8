"""POST /v1/embeddings with all-MiniLM-L6-v2 served beside the chat model
(--embedding-model): the real openai, LangChain and LiteLLM clients, agreement with
sentence-transformers' vectors (tests/golden/embeddings/, made by
scripts/reference/make_embedding_golden.py), batching across concurrent requests, and
every bad request a 400 naming its field."""
import base64
import concurrent.futures
import struct
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from conftest import ROOT, ServerProcess

ENCODER = ROOT / "models" / "all-MiniLM-L6-v2"
GOLDEN = ROOT / "tests" / "golden" / "embeddings"


@pytest.fixture(scope="module")
def emb_server():
    if not (ENCODER / "model.safetensors").exists():
        pytest.skip(f"EMBEDDING MODEL MISSING (scripts/fetch_models.sh installs it): {ENCODER}")
    s = ServerProcess("--embedding-model", str(ENCODER)).wait_ready()
    yield s
    assert s.stop() == 0, s.output()


@pytest.fixture(scope="module")
def client(emb_server):
    return openai.OpenAI(base_url=emb_server.url + "/v1", api_key="unused", max_retries=0)


def golden():
    texts = (GOLDEN / "sentences.txt").read_text(encoding="utf-8").split("\n")[:200]
    ref = np.frombuffer((GOLDEN / "minilm_f32.bin").read_bytes(), dtype="<f4").reshape(200, 384)
    return texts, ref


def cosines(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_models_lists_both(client):
    ids = [m.id for m in client.models.list().data]
    assert ids == [Path(ids[0]).name, "all-MiniLM-L6-v2"] and ids[0].startswith("SmolLM2")
    assert client.models.retrieve("all-MiniLM-L6-v2").id == "all-MiniLM-L6-v2"


def test_openai_client_matches_sentence_transformers(client):
    texts, ref = golden()
    # The openai client asks for base64 unless told otherwise, and decodes it.
    got = []
    for i in range(0, 200, 50):
        r = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts[i:i + 50], extra_body={"truncate": True})
        assert [d.index for d in r.data] == list(range(len(r.data)))
        assert r.model == "all-MiniLM-L6-v2" and r.usage.prompt_tokens == r.usage.total_tokens > 0
        got += [d.embedding for d in r.data]
    c = cosines(got, ref)
    assert c.min() >= 0.99999, (c.argmin(), c.min())


def test_float_and_base64_agree(emb_server):
    body = {"model": "all-MiniLM-L6-v2", "input": ["one", "two words"]}
    f = httpx.post(emb_server.url + "/v1/embeddings", json=body | {"encoding_format": "float"}, timeout=60).json()
    b = httpx.post(emb_server.url + "/v1/embeddings", json=body | {"encoding_format": "base64"}, timeout=60).json()
    assert f["object"] == "list" and f["data"][0]["object"] == "embedding"
    for fd, bd in zip(f["data"], b["data"]):
        raw = base64.b64decode(bd["embedding"])
        assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == pytest.approx(fd["embedding"], abs=0)
    assert f["usage"] == {"prompt_tokens": 7, "total_tokens": 7}  # [CLS] one [SEP] + [CLS] two words [SEP]


def test_token_id_inputs(client):
    by_text = client.embeddings.create(model="m", input="hello world").data[0].embedding
    by_ids = client.embeddings.create(model="m", input=[101, 7592, 2088, 102]).data[0].embedding
    both = client.embeddings.create(model="m", input=[[101, 7592, 2088, 102], [101, 102]]).data
    assert by_ids == by_text == both[0].embedding
    assert len(both) == 2


def test_concurrent_requests_batch_and_agree(client):
    texts, ref = golden()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda t: client.embeddings.create(model="m", input=t, extra_body={"truncate": True})
                            .data[0].embedding, texts[:64]))
    assert cosines(got, ref[:64]).min() >= 0.99999


def test_langchain_and_litellm(emb_server, monkeypatch):
    from langchain_openai import OpenAIEmbeddings

    # check_embedding_ctx_length=False: LangChain would otherwise send tiktoken's ids.
    lc = OpenAIEmbeddings(base_url=emb_server.url + "/v1", api_key="unused", model="all-MiniLM-L6-v2",
                          check_embedding_ctx_length=False, max_retries=0)
    docs = lc.embed_documents(["The cat sat on the mat.", "A dog slept on the rug."])
    query = lc.embed_query("Where did the cat sit?")
    assert len(docs) == 2 and len(query) == 384
    assert cosines([query], [docs[0]])[0] > cosines([query], [docs[1]])[0]

    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    r = litellm.embedding(model="openai/all-MiniLM-L6-v2", api_base=emb_server.url + "/v1", api_key="unused",
                          input=["The cat sat on the mat."])
    assert cosines([r.data[0]["embedding"]], [docs[0]])[0] > 0.99999


@pytest.mark.parametrize("body,param", [
    ({}, "input"),
    ({"input": []}, "input"),
    ({"input": 5}, "input"),
    ({"input": ["a", 1]}, "input[1]"),
    ({"input": [[1, 2], "a"]}, "input[1]"),
    ({"input": [[101, 40000]]}, "input[0]"),
    ({"input": [[]]}, "input[0]"),
    ({"input": [-1]}, "input[0]"),
    ({"input": "word " * 300}, "input"),
    ({"input": ["x"] * 2049}, "input"),
    ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({"input": "x", "dimensions": 128}, "dimensions"),
    ({"input": "x", "dimensions": 0}, "dimensions"),
    ({"input": "x", "truncate": "yes"}, "truncate"),
    ({"input": "x", "model": 3}, "model"),
])
def test_bad_requests_name_the_field(emb_server, body, param):
    r = httpx.post(emb_server.url + "/v1/embeddings", json=body, timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param, r.text


def test_chat_model_name_is_refused(client):
    chat_id = client.models.list().data[0].id
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model=chat_id, input="x")
    assert e.value.body["param"] == "model"


def test_no_embedding_model_is_a_clear_400(server):
    r = httpx.post(server.url + "/v1/embeddings", json={"input": "x"}, timeout=30)
    assert r.status_code == 400
    assert "--embedding-model" in r.json()["error"]["message"]
