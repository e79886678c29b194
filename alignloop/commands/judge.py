"""`alignloop judge`: the high-fidelity judge worker (LLM over judge.escalations)."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("judge")
    def judge(
        base_url: str = typer.Option(None, help="OpenAI-compatible API root, e.g. http://localhost:8000/v1 "
                                                "(default: llm.base_url in configs/judges.yaml)."),
        model: str = typer.Option(None, help="Model name (default: llm.model)."),
        metrics_port: int = typer.Option(None, help="Prometheus /metrics port (default: settings + 1; 0 disables)."),
        max_idle_s: float = typer.Option(None, help="Exit after this long without escalations (default: run forever)."),
    ) -> None:
        """Consume judge.escalations, judge with an LLM, publish feedback.labels / feedback.preferences /
        judge.human_queue, and land feedback.preferences in the Delta `preferences` table. The API key is read
        from $ALIGNLOOP_LLM_API_KEY (llm.api_key_env)."""
        import asyncio
        import logging

        from prometheus_client import CollectorRegistry

        from alignloop.configs import llm_api_key
        from alignloop.errors import UserError
        from alignloop.preflight import check_port, require_broker, start_metrics
        from schemas.settings import load_settings
        from connectors.llm_judge import LlmJudgeClient
        from streams.judges.config import load_judges_config
        from streams.hifi.worker import JudgeWorker

        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        s = load_settings()
        cfg = load_judges_config(s.judges_config)
        updates = {k: v for k, v in {"base_url": base_url, "model": model}.items() if v}
        if updates:
            cfg = cfg.model_copy(update={"llm": cfg.llm.model_copy(update=updates)})
        if not cfg.llm.base_url.startswith(("http://", "https://")):
            raise UserError(f"llm.base_url must start with http:// or https:// (got {cfg.llm.base_url!r})")
        port = check_port((s.metrics_port + 1 if s.metrics_port else 0) if metrics_port is None else metrics_port)
        registry = CollectorRegistry()
        start_metrics(port, registry)  # local mistakes first, then the network
        require_broker(s)

        async def main() -> None:
            from streams.curation.sink import land_preferences

            worker = JudgeWorker(s, cfg, LlmJudgeClient(cfg.llm, llm_api_key(cfg.llm)), registry)
            # Preferences (LLM pairwise, SDK, humans) land in the Delta `preferences` table alongside.
            lander = asyncio.create_task(land_preferences(s, worker.stop, registry=registry))
            try:
                await worker.run(max_idle_s=max_idle_s)
            finally:
                worker.stop.set()
                await lander

        asyncio.run(main())
