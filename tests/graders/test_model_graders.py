"""score_model and label_model against an OpenAI-compatible chat endpoint. The endpoint here is
a stand-in judge on loopback that answers with the last message it was sent (so the test
controls the judge's answer through the grader's own templates); polytune's own
/v1/chat/completions is driven in tests/dialects/openai/test_graders_api.py."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from polytune.graders import GraderConfig, Grading, ModelEndpoint, parse_grader


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.requests.append((self.headers.get("authorization"), body))
        if body["model"] == "broken":
            self.send_response(503)
            self.end_headers()
            return
        answer = {
            "choices": [{"message": {"role": "assistant", "content": body["messages"][-1]["content"]}}],
            "usage": {"total_tokens": 7},
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def judge():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    srv.requests = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()


def grading(judge) -> Grading:
    url = f"http://127.0.0.1:{judge.server_address[1]}/v1"
    return Grading(GraderConfig(endpoint=ModelEndpoint(base_url=url, api_key="judge-key")))


def score(model: str = "judge", range_=None, content="{{sample.output_text}}"):
    return parse_grader(
        {
            "type": "score_model",
            "name": "judge",
            "model": model,
            "range": range_,
            "sampling_params": {"temperature": 0.5, "seed": 3, "max_completions_tokens": 20},
            "input": [{"role": "system", "content": "Grade {{item.question}}."}, {"role": "user", "content": content}],
        }
        if range_
        else {"type": "score_model", "name": "judge", "model": model, "input": [{"role": "user", "content": content}]}
    )


def test_score_model_reads_the_judges_score_and_sends_the_rendered_prompt(judge):
    g = grading(judge)
    r = g.grade(score(range_=[0, 10]), "7.5", {"question": "2+2"})
    assert r.reward == 7.5 and r.token_usage == 7 and not r.failed
    auth, body = judge.requests[-1]
    assert auth == "Bearer judge-key"
    assert body["messages"] == [{"role": "system", "content": "Grade 2+2."}, {"role": "user", "content": "7.5"}]
    assert (body["temperature"], body["seed"], body["max_tokens"]) == (0.5, 3, 20)
    assert g.grade(score(), '{"result": 0.25, "steps": []}', {}).reward == 0.25


def test_score_model_failures_are_flagged(judge):
    g = grading(judge)
    r = g.grade(score(), "no number here", {})
    assert r.reward == 0.0 and r.errors["model_grader_parse_error"]
    assert g.grade(score(), "3", {}).errors["model_grader_parse_error"]  # outside the default range [0, 1]
    r = g.grade(score(model="broken"), "1", {})
    assert r.errors["model_grader_server_error"] and "503" in r.errors["model_grader_server_error_details"]


def test_label_model_passes_on_passing_labels(judge):
    g = grading(judge)
    grader = parse_grader(
        {
            "type": "label_model",
            "name": "sentiment",
            "model": "judge",
            "input": [{"role": "user", "content": "{{sample.output_text}}"}],
            "labels": ["positive", "neutral", "negative"],
            "passing_labels": ["positive"],
        }
    )
    assert g.grade(grader, "positive", {}).reward == 1.0
    assert g.grade(grader, '{"label": "negative"}', {}).reward == 0.0
    assert g.grade(grader, "I would say neutral.", {}).reward == 0.0
    assert g.grade(grader, "no idea", {}).errors["model_grader_parse_error"]


def test_an_unreachable_endpoint_is_a_server_error():
    g = Grading(GraderConfig(endpoint=ModelEndpoint(base_url="http://127.0.0.1:9/v1", timeout=2)))
    r = g.grade(score(), "1", {})
    assert r.reward == 0.0 and r.errors["model_grader_server_error"]
