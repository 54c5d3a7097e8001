"""Child process for the crash test: journal decisions forever, printing ``ACK <i>`` after each
successful flush; the test kills it with SIGKILL mid-write."""

from __future__ import annotations

import sys
from pathlib import Path

from cryptoarena.config import MongoSettings, Settings
from cryptoarena.trading.journal import Journal, JournalConfig, WriterConfig


def main() -> None:
    root, run_id = Path(sys.argv[1]), sys.argv[2]
    settings = Settings(mongo=MongoSettings(embedded_dir=root / "journal"))
    config = JournalConfig(writer=WriterConfig(batch_size=50, retry_initial_s=30.0))
    journal = Journal.open(settings, run_id=run_id, config=config)
    print("OPEN", flush=True)
    i = 0
    while True:
        journal.record("decisions", {"strategy": "child", "i": i})
        if i % 25 == 24 and journal.flush(30.0):
            print(f"ACK {i}", flush=True)
        i += 1


if __name__ == "__main__":
    main()
