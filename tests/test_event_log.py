"""TensorBoard event logs (speedynas_core.event_log): a disk fault names the log's folder."""
from __future__ import annotations

import errno

import pytest

from speedynas_core.cli import os_error_message
from speedynas_core.event_log import EventLog


def test_a_writer_fault_without_a_file_name_names_the_folder(tmp_path, monkeypatch):
    with EventLog(tmp_path / "tb") as log:
        log.add_scalar("loss", 1.0, 0)

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")  # as the writer thread's

        monkeypatch.setattr(log._writer, "add_scalar", full)
        with pytest.raises(OSError) as info:
            log.add_scalar("loss", 2.0, 1)
    assert os_error_message(info.value) == (
        f"{tmp_path / 'tb'}: cannot write the event log: No space left on device")
    assert info.value.errno == errno.ENOSPC


def test_a_fault_that_names_its_file_is_kept(tmp_path, monkeypatch):
    log = EventLog(tmp_path / "tb")
    monkeypatch.setattr(log._writer, "flush", lambda: (_ for _ in ()).throw(
        OSError(errno.EIO, "Input/output error", "/elsewhere/file")))
    with pytest.raises(OSError) as info:
        log.flush()
    assert info.value.filename == "/elsewhere/file"
    monkeypatch.undo()
    log.close()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
