"""POST /v1/embeddings through the official openai client (tiny embedding model), and its refusals."""

from __future__ import annotations

import base64

import numpy as np
import pytest

openai = pytest.importorskip("openai")

from server_helpers import client, serving  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def api(tmp_path_factory, tiny_model_dir):
    from tiny_embedder import make_tiny_embedder

    folder = make_tiny_embedder(tmp_path_factory.mktemp("tiny-embedder"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HEARTH_EMBEDDINGS_MODEL", str(folder))
        with serving(tiny_model_dir) as (server, _scheduler):
            yield client(server), folder.name


def test_embeddings_in_the_openai_shape(api):
    from engine.rag.embedder import load_embedder

    api, name = api
    reply = api.embeddings.create(model=name, input=["the cat sat on the mat", "money in the bank"])
    assert [d.index for d in reply.data] == [0, 1] and reply.model == name
    vectors = np.array([d.embedding for d in reply.data], dtype=np.float32)
    assert vectors.shape == (2, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert reply.usage.prompt_tokens == reply.usage.total_tokens > 4
    import os

    local = load_embedder(os.environ.get("HEARTH_EMBEDDINGS_MODEL")).embed(["the cat sat on the mat"])[0]
    assert np.allclose(vectors[0], local, atol=1e-5)
    single = api.embeddings.create(model=name, input="money in the bank")
    assert np.allclose(single.data[0].embedding, vectors[1], atol=1e-5)


def test_base64_encoding(api):
    api, name = api
    raw = api.embeddings.with_raw_response.create(model=name, input="the sea", encoding_format="base64")
    body = raw.http_response.json()
    decoded = np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), dtype="<f4")
    assert decoded.shape == (32,) and abs(float(np.linalg.norm(decoded)) - 1.0) < 1e-4


def test_refusals_name_the_field(api):
    api, name = api
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        api.embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.BadRequestError, match="token ids") as caught:
        api.embeddings.create(model=name, input=[[1, 2, 3]])
    assert caught.value.body["param"] == "input"
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        api.embeddings.create(model=name, input="x", dimensions=8)
    with pytest.raises(openai.BadRequestError, match="empty"):
        api.embeddings.create(model=name, input=[""])
