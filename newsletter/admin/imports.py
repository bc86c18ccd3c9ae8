"""Subscriber imports from the console, run as background jobs with progress.

An upload is kept in a private temporary folder; a dry run reads the whole
file first (`import_subscribers(..., dry_run=True)`, which does all the work
and rolls back) and its summary is shown; staff then run the import for real
from the same file. Each run happens in a thread, reporting the rows read so
far, so that a million-row file does not hold a request open; the page
refreshes itself until the run is done, then offers the reject file.

Jobs live in the memory of the process that took the upload (a restart
forgets them, and their files are deleted with them): a console served by
several processes needs the same process for the job page, which a single
`newsletter serve` gives. The newest `KEEP` jobs are kept.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.app import Newsletter
from newsletter.audience.imports import ImportReport, import_subscribers
from newsletter.errors import OperationFailed, UserError

KEEP = 20


@dataclass
class ImportJob:
    id: str
    folder: Path
    file_name: str
    list_name: str
    mode: str
    owner: str
    dry_run: bool = True
    state: str = "running"  # running, done, failed
    rows: int = 0
    report: ImportReport | None = None
    error: str = ""
    runs: list[str] = field(default_factory=list)

    @property
    def upload(self) -> Path:
        return self.folder / "upload.csv"

    @property
    def rejects(self) -> Path:
        return self.folder / "rejected.csv"


class ImportJobs:
    def __init__(self, app: Newsletter) -> None:
        self.app = app
        self._jobs: OrderedDict[str, ImportJob] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, data: bytes, *, file_name: str, list_name: str, mode: str,
               owner: str) -> ImportJob:  # fmt: skip
        """Keep the upload and start its dry run."""
        folder = Path(tempfile.mkdtemp(prefix="newsletter-import-"))  # mode 0700
        job = ImportJob(
            id=secrets.token_urlsafe(12),
            folder=folder,
            file_name=file_name,
            list_name=list_name,
            mode=mode,
            owner=owner,
        )
        job.upload.write_bytes(data)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP:
                _, old = self._jobs.popitem(last=False)
                shutil.rmtree(old.folder, ignore_errors=True)
        self._start(job, dry_run=True)
        return job

    def get(self, job_id: str) -> ImportJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def run_for_real(self, job: ImportJob) -> None:
        if job.state == "running":
            raise UserError("this import is still running; wait for it to finish")
        if not job.dry_run:
            raise UserError("this file was already imported; upload it again to repeat")
        self._start(job, dry_run=False)

    def _start(self, job: ImportJob, *, dry_run: bool) -> None:
        job.dry_run, job.state, job.rows, job.report, job.error = dry_run, "running", 0, None, ""

        def progress(rows: int) -> None:
            job.rows = rows

        def work() -> None:
            try:
                job.report = import_subscribers(
                    self.app,
                    job.upload,
                    list_name=job.list_name,
                    mode=job.mode,
                    dry_run=dry_run,
                    reject_path=job.rejects,
                    progress=progress,
                    actor=job.owner,
                )
                job.state = "done"
            except (UserError, OperationFailed) as exc:
                # The message names the file by its temporary path; say the upload's name.
                job.error = str(exc).replace(str(job.upload), job.file_name)
                job.state = "failed"
            except Exception as exc:  # shown as a failure; the log of the thread has the rest
                job.error = f"the import stopped: {type(exc).__name__}"
                job.state = "failed"
            job.runs.append("dry run" if dry_run else "import")

        threading.Thread(target=work, name=f"import-{job.id}", daemon=True).start()
