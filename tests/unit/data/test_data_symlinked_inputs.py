"""A folder of links to videos elsewhere (a common way to pick clips) is read like a folder of videos."""

from __future__ import annotations

from data_testutil import touch_videos

from a2v.data import discover_items


def test_symlinked_videos_in_a_folder_are_found_and_named_by_their_link(tmp_path):
    (target,) = touch_videos(tmp_path / "elsewhere", ["clip.mpg"])
    picked = tmp_path / "picked" / "sub"
    picked.mkdir(parents=True)
    (picked / "first.mpg").symlink_to(target)
    (item,) = discover_items([tmp_path / "picked"])  # used to fail: the resolved file is outside the folder
    assert item.source == target.resolve()
    assert item.id.startswith("sub__first-")
