"""A local single-node Apache Kafka broker (KRaft, combined mode) from Maven-resolved jars.

Layout under ``<home>/kafka``: ``libs/`` (jars), ``config/server.properties``, ``data/`` (log dirs; survives
stop/start), ``broker.pid``, ``broker.log``.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

POM = Path(__file__).resolve().parent.parent / "deploy" / "kafka" / "pom.xml"


class BrokerError(Exception):
    """The local broker could not be set up or started; the message says what to fix."""


@dataclass
class LocalBroker:
    home: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "768m"

    @property
    def root(self) -> Path:
        return self.home / "kafka"

    @property
    def libs(self) -> Path:
        return self.root / "libs"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def config_path(self) -> Path:
        return self.root / "config" / "server.properties"

    @property
    def pid_path(self) -> Path:
        return self.root / "broker.pid"

    @property
    def log_path(self) -> Path:
        return self.root / "broker.log"

    @property
    def bootstrap(self) -> str:
        return f"localhost:{self.port}"

    # --- set-up ---------------------------------------------------------------------------------------------
    def resolve_jars(self) -> None:
        """Resolve kafka_2.13 and an slf4j binding with Maven (cached in ~/.m2 and libs/)."""
        if self.libs.is_dir() and any(self.libs.glob("kafka_2.13-*.jar")):
            return
        if shutil.which("mvn") is None:
            raise BrokerError("Maven (mvn) is not on PATH: install it (apt-get install maven) or point "
                              "ALIGNLOOP_KAFKA_BOOTSTRAP at an existing cluster")
        tmp = self.libs.with_name("libs.partial").resolve()
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
               f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BrokerError(f"Maven could not resolve the Kafka jars (exit {proc.returncode}): "
                              f"{(proc.stdout + proc.stderr).strip().splitlines()[-1:]}")
        tmp.rename(self.libs.resolve())

    def write_config(self) -> None:
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@localhost:{self.controller_port}",
            "listeners": f"PLAINTEXT://localhost:{self.port},CONTROLLER://localhost:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://localhost:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data.resolve()),
            "num.partitions": "4",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "log.retention.check.interval.ms": "60000",
            "message.max.bytes": "10485760",
        }
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def _java(self, main: str, *args: str, **popen) -> list[str]:
        cp = os.pathsep.join(str(p) for p in sorted(self.libs.glob("*.jar")))
        return ["java", f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
                f"-Dlog4j.configuration=file:{self._log4j()}", "-cp", cp, main, *args]

    def _log4j(self) -> Path:
        path = self.root / "config" / "log4j.properties"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("log4j.rootLogger=WARN, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
                            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
                            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
                            "log4j.logger.kafka=WARN\nlog4j.logger.org.apache.kafka=WARN\n")
        return path

    def format_storage(self) -> None:
        if (self.data / "meta.properties").exists():
            return
        self.data.mkdir(parents=True, exist_ok=True)
        cluster_id = uuid.uuid4().hex[:22]
        proc = subprocess.run(self._java("kafka.tools.StorageTool", "format", "-t", cluster_id,
                                         "-c", str(self.config_path), "--ignore-formatted"),
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed: {proc.stderr.strip()[-300:]}")

    # --- lifecycle ------------------------------------------------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def port_open(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, timeout: float = 90.0) -> int:
        if (pid := self.pid()) is not None:
            return pid
        if self.port_open():
            raise BrokerError(f"port {self.port} is already in use by another process: stop it or set "
                              "ALIGNLOOP_BROKER_PORT (and ALIGNLOOP_KAFKA_BOOTSTRAP) to a free port")
        if shutil.which("java") is None:
            raise BrokerError("java is not on PATH: install a JDK 17 (apt-get install openjdk-17-jre-headless)")
        self.resolve_jars()
        self.write_config()
        self.format_storage()
        log = open(self.log_path, "ab")
        proc = subprocess.Popen(self._java("kafka.Kafka", str(self.config_path)), stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid_path.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_path.unlink(missing_ok=True)
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-5:]
                raise BrokerError(f"the broker exited with {proc.returncode}; see {self.log_path}: {' | '.join(tail)}")
            if self.port_open():
                return proc.pid
            time.sleep(0.3)
        raise BrokerError(f"the broker did not open port {self.port} within {timeout:.0f}s; see {self.log_path}")

    def stop(self, timeout: float = 60.0, *, kill: bool = False) -> bool:
        pid = self.pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
                # reap if it is our child
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.kill(pid, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)
        return True
