"""MCAP integrity: our bags carry CRCs, corrupted or truncated bags are refused in one line naming the file and
byte offset, and `gssplat bag recover` salvages every message up to the damage into a valid bag."""

import shutil
import subprocess
import sys

import pytest

from gssplat_ros.bags.frames import open_bag
from gssplat_ros.bags.mcap_check import scan_mcap
from gssplat_ros.bags.scene_bag import SceneBagConfig, write_scene_bag
from gssplat_ros.errors import DataError
from tests.bag_helpers import make_scene


def gssplat(*args):
    return subprocess.run([sys.executable, "-m", "gssplat_ros.cli", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def big_bag(tmp_path_factory):
    """A bag of several 1 MiB chunks (rosbags' chunk size): 12 frames resized to 320x240."""
    root = tmp_path_factory.mktemp("integrity")
    scene = make_scene(root / "scene", frames=12)
    write_scene_bag(scene, root / "bag", SceneBagConfig(size=(320, 240)))
    return root / "bag"


def messages(bag):
    with open_bag(bag) as reader:
        return [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]


def flip_bit(path, offset):
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x04
    path.write_bytes(bytes(raw))


def test_bags_we_write_carry_every_mcap_crc(big_bag):
    report = scan_mcap(big_bag / "bag.mcap")
    assert report.ok, report.describe()
    assert report.chunks >= 3 and report.chunks_crc_checked == report.chunks
    assert report.data_crc_checked and report.summary_crc_checked


def test_a_bit_flipped_chunk_is_refused_naming_file_and_offset(big_bag, tmp_path):
    bag = tmp_path / "flipped"
    shutil.copytree(big_bag, bag)
    flip_bit(bag / "bag.mcap", (bag / "bag.mcap").stat().st_size // 2)  # inside an image in a middle chunk
    with pytest.raises(DataError, match=r"flipped/bag\.mcap: chunk \d+ CRC mismatch at byte \d+.*bag recover"):
        open_bag(bag)
    r = gssplat("bag", "info", bag)
    assert r.returncode == 1 and "CRC mismatch at byte" in r.stdout
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_a_flipped_summary_byte_is_found(big_bag, tmp_path):
    bag = tmp_path / "summary"
    shutil.copytree(big_bag, bag)
    raw = (bag / "bag.mcap").read_bytes()
    flip_bit(bag / "bag.mcap", raw.rindex(b"/camera/pose") + 3)  # a topic name in the summary's channels
    with pytest.raises(DataError, match=r"summary CRC mismatch"):
        open_bag(bag)


def test_a_truncated_bag_says_what_to_do_and_recovers_every_complete_chunk(big_bag, tmp_path):
    original = messages(big_bag)
    cut = tmp_path / "cut"
    cut.mkdir()
    raw = (big_bag / "bag.mcap").read_bytes()
    (cut / "cut.mcap").write_bytes(raw[: int(len(raw) * 0.7)])  # a recorder killed mid-chunk: no metadata.yaml
    with pytest.raises(DataError, match=r"cut\.mcap: .*truncated.*gssplat bag recover"):
        open_bag(cut)
    for command in (["bag", "info", cut], ["bag", "play", cut], ["process", cut, "--out", tmp_path / "o"]):
        r = gssplat(*command)
        assert r.returncode != 0, command
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and "gssplat bag recover" in err[0] and "Traceback" not in r.stderr, (command, r.stderr)

    r = gssplat("bag", "recover", cut, tmp_path / "fixed")
    assert r.returncode == 0, r.stderr
    recovered = messages(tmp_path / "fixed")  # opens with every CRC verified
    assert scan_mcap(next((tmp_path / "fixed").glob("*.mcap"))).ok
    assert 0 < len(recovered) < len(original)
    # Every recovered message is a recorded one, byte for byte, and they are all the bag held before the cut.
    assert set(recovered) <= set(original)
    lost = set(original) - set(recovered)
    assert min(t for _, t, _ in lost) >= max(t for _, t, _ in recovered)
    assert f"recovered {len(recovered)} messages" in r.stdout


def test_recover_skips_a_corrupted_chunk_and_keeps_the_rest(big_bag, tmp_path):
    bag = tmp_path / "flipped"
    shutil.copytree(big_bag, bag)
    flip_bit(bag / "bag.mcap", (bag / "bag.mcap").stat().st_size // 2)
    original = messages(big_bag)
    r = gssplat("bag", "recover", bag, tmp_path / "fixed")
    assert r.returncode == 0, r.stderr
    recovered = messages(tmp_path / "fixed")
    assert set(recovered) < set(original) and len(recovered) > len(original) // 3
    assert "CRC mismatch" in r.stderr


def test_recover_refuses_what_it_cannot_use(tmp_path, big_bag):
    r = gssplat("bag", "recover", tmp_path / "nope", tmp_path / "out")
    assert r.returncode == 1 and "bag not found" in r.stderr
    r = gssplat("bag", "recover", big_bag, big_bag)
    assert r.returncode == 1 and "already exists" in r.stderr
