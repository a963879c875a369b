"""Reading a user's input files (speedynas_core.inputs): regular files and pipes only, bounded, once."""
from __future__ import annotations

import os
import threading
import time

import pytest

from speedynas_core.errors import SpeedyNASError, shown
from speedynas_core.inputs import read_input, read_input_text


def test_a_regular_file_is_read_whole_and_a_bom_is_dropped(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_bytes(b"\xef\xbb\xbfseed: 1\n")
    assert read_input_text(path, "config file", 100) == "seed: 1\n"


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"x" * 5000)
    with pytest.raises(SpeedyNASError, match=r"config file .*big.yaml is 5,000 bytes, larger "
                                             r"than 4,096 bytes"):
        read_input(path, "config file", 4096)


@pytest.mark.parametrize("path, kind", [("/dev/zero", "a character device"),
                                        ("/dev/null", "a character device")])
def test_a_device_file_is_refused_naming_its_kind(path, kind):
    with pytest.raises(SpeedyNASError, match=f"candidates file {path} is {kind}"):
        read_input(path, "candidates file", 1 << 20)


def test_a_directory_and_a_missing_file_are_named(tmp_path):
    with pytest.raises(SpeedyNASError, match="is a directory"):
        read_input(tmp_path, "config file", 100)
    with pytest.raises(SpeedyNASError, match="config file not found: .*nope"):
        read_input(tmp_path / "nope", "config file", 100)


def test_a_nul_byte_in_a_path_is_refused_naming_it():
    with pytest.raises(SpeedyNASError, match=r"path 'a\\x00b' contains a NUL byte"):
        read_input("a\x00b", "config file", 100)


def test_text_in_another_encoding_names_the_byte(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(SpeedyNASError, match="is not UTF-8 text \\(byte 3"):
        read_input_text(path, "candidates file", 100)


def test_a_fifo_with_no_writer_is_refused_after_the_wait(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(SpeedyNASError, match="is a pipe that nothing was written to in 0.3 s"):
        read_input(fifo, "config file", 100, fifo_wait=0.3)
    assert time.monotonic() - start < 30  # refused, not waiting for ever


def test_a_fifo_with_a_writer_is_read_to_its_end(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def writer() -> None:
        with open(fifo, "wb") as handle:
            for _ in range(3):
                handle.write(b"line\n")
                handle.flush()
                time.sleep(0.05)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert read_input(fifo, "config file", 100, fifo_wait=30) == b"line\n" * 3
    finally:
        thread.join()


def test_a_pipe_is_cut_at_the_limit_instead_of_filling_memory():
    read_end, write_end = os.pipe()
    os.write(write_end, b"x" * 3000)
    os.close(write_end)
    try:
        with pytest.raises(SpeedyNASError, match="holds more than 1,024 bytes"):
            read_input(f"/dev/fd/{read_end}", "config file", 1024)
    finally:
        os.close(read_end)


def test_shown_cuts_before_it_renders():
    assert len(shown("x" * 10**7)) == 80
    assert shown(list(range(10**6))).startswith("[0, 1, 2")
    nested: list = []
    inner = nested
    for _ in range(100_000):  # deeper than any recursion limit
        inner.append([])
        inner = inner[0]
    assert shown(nested) == "[[[[...]]]]"
