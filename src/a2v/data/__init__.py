"""Dataset preparation at scale and the prepared-dataset format.

``prepare_dataset`` (behind ``a2v prepare <recipe>``) streams videos through an extractor (default:
:class:`a2v.data.items.TalkingFaceExtractor`: 16 kHz audio, MFCC, face track, landmarks, 256x256 crops
at 25 fps) into WebDataset tar shards with a manifest; resumable, parallel over workers, every
dropped item recorded with a reason. ``iter_items`` / ``load_items`` read the result back.
"""

from a2v.data.prepare import (
    VIDEO_EXTENSIONS,
    DropItem,
    Item,
    PrepareConfig,
    discover_items,
    item_id,
    prepare_dataset,
    resolve_worker,
    run_prepare_command,
)
from a2v.data.shards import (
    ShardWriter,
    decode_crop_video,
    iter_items,
    load_items,
    read_dropped,
    read_manifest,
    shard_paths,
)

__all__ = [
    "VIDEO_EXTENSIONS",
    "DropItem",
    "Item",
    "PrepareConfig",
    "ShardWriter",
    "decode_crop_video",
    "discover_items",
    "item_id",
    "iter_items",
    "load_items",
    "prepare_dataset",
    "read_dropped",
    "read_manifest",
    "resolve_worker",
    "run_prepare_command",
    "shard_paths",
]
