"""Mount paths (FfDL's /mnt/data/<bucket>): rewriting, the scan of a code folder, its working
copy, and what validate says."""

from __future__ import annotations

from pathlib import Path

from sweeper._mounts import find_mentions, link_code, mentioned, mount_note, mount_path, rewrite

MOUNTS = {"/mnt/data/digits_data": "data", "/mnt/results/digits_out": "results"}
MAPPING = {"/mnt/data/digits_data": "/scratch/staged", "/mnt/results/digits_out": "/t/output"}


def test_whole_path_components_are_rewritten_and_nothing_else():
    text = (
        'source: "/mnt/data/digits_data/train/"\n'
        "save: /mnt/results/digits_out\n"
        "other: /mnt/data/digits_data2/x /mnt/data/digits_data_old /srv/mnt/data/digits_dataX\n"
        "quoted: '/mnt/data/digits_data'\n"
    )
    assert rewrite(text, MAPPING) == (
        'source: "/scratch/staged/train/"\n'
        "save: /t/output\n"
        "other: /mnt/data/digits_data2/x /mnt/data/digits_data_old /srv/mnt/data/digits_dataX\n"
        "quoted: '/scratch/staged'\n"
    )
    assert rewrite(text, {}) == text


def test_the_longest_mount_path_wins():
    mapping = {"/mnt/data/a": "/x", "/mnt/data/a/b": "/y"}
    assert rewrite("/mnt/data/a/b/c /mnt/data/a/c", mapping) == "/y/c /x/c"
    assert mount_path("/mnt/data/a/b/c", {"/mnt/data/a": "data", "/mnt/data/a/b": "results"}) == (
        "results",
        "c",
    )
    assert mount_path("/mnt/data/ab", {"/mnt/data/a": "data"}) is None
    assert mentioned("cp /mnt/results/digits_out/m.h5 .", MOUNTS) == {"/mnt/results/digits_out"}


def code_folder(root: Path) -> Path:
    (root / "nets").mkdir(parents=True)
    (root / "nets" / "net.prototxt").write_text('source: "/mnt/data/digits_data/train"\n')
    (root / "nets" / "plain.prototxt").write_text("layer {}\n")
    (root / "run.sh").write_text("#!/bin/sh\nls /mnt/results/digits_out\n")
    (root / "run.sh").chmod(0o755)
    (root / "weights.bin").write_bytes(b"\0/mnt/data/digits_data\0")  # binary: never rewritten
    (root / "results").mkdir()
    (root / "results" / "old.txt").write_text("/mnt/data/digits_data\n")  # sweeper's own
    return root


def test_the_scan_finds_text_files_only_and_skips_sweepers_folders(tmp_path):
    root = code_folder(tmp_path / "code")
    found = find_mentions(root, MOUNTS, {"results"})
    assert found == {
        Path("nets/net.prototxt"): {"/mnt/data/digits_data"},
        Path("run.sh"): {"/mnt/results/digits_out"},
    }


def test_the_working_copy_rewrites_what_names_a_mount_and_links_the_rest(tmp_path):
    root = code_folder(tmp_path / "code")
    work = tmp_path / "work"
    work.mkdir()
    mentions = set(find_mentions(root, MOUNTS, {"results"}))
    link_code(root, work, MAPPING, {"results"}, mentions)
    assert (work / "nets" / "net.prototxt").read_text() == 'source: "/scratch/staged/train"\n'
    assert not (work / "nets").is_symlink() and not (work / "nets" / "net.prototxt").is_symlink()
    assert (work / "nets" / "plain.prototxt").is_symlink()
    assert (work / "weights.bin").is_symlink()
    assert (work / "run.sh").read_text().endswith("ls /t/output\n")
    assert (work / "run.sh").stat().st_mode & 0o111  # still executable
    assert not (work / "results").exists()
    # The user's files are untouched.
    assert (root / "nets" / "net.prototxt").read_text() == 'source: "/mnt/data/digits_data/train"\n'


def test_the_note_says_what_each_path_is_and_where_it_is_named():
    note = mount_note(MOUNTS, {"/mnt/data/digits_data": ["the command", "a.txt", "b", "c", "d"]})
    assert note == (
        "paths mapped for each trial, without touching the machine: /mnt/data/digits_data is "
        "the trial's data folder ($DATA_DIR) (named in the command, a.txt, b and 2 more)"
    )
    assert mount_note(MOUNTS, {}) is None
