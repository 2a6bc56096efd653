"""Faces in video: detection, tracks with interpolated boxes, crops + paste-back, 68 landmarks,
mouth PCA features and facial maps.

Frames are RGB ``uint8 (H,W,3)``; boxes ``float32 (...,4)`` x0,y0,x1,y1 in continuous pixels;
landmarks ``float32 (...,68,2)`` x,y px. Detector and landmark packages (facenet-pytorch, dlib,
face-recognition-models, mediapipe) are imported only when a detector / landmarker is built.
"""

from a2v.face.crop import CropTransform, crop_track, square_box
from a2v.face.detect import (
    Detections,
    DlibDetector,
    FaceDetector,
    MediaPipeDetector,
    MTCNNDetector,
    box_size_px,
    make_detector,
)
from a2v.face.facial_map import GROUPS, facial_map
from a2v.face.landmarks import DlibLandmarker, inter_ocular_px, landmark_jitter, smooth_landmarks
from a2v.face.mouth import MouthPCA, MouthPose, denormalize_mouth, normalize_mouth, with_mouth
from a2v.face.track import (
    DropReason,
    FaceTrack,
    TrackConfig,
    TrackResult,
    interpolate_boxes,
    keyframe_indices,
    track_speaker,
    track_strict,
)

__all__ = [
    "GROUPS",
    "CropTransform",
    "Detections",
    "DlibDetector",
    "DlibLandmarker",
    "DropReason",
    "FaceDetector",
    "FaceTrack",
    "MTCNNDetector",
    "MediaPipeDetector",
    "MouthPCA",
    "MouthPose",
    "TrackConfig",
    "TrackResult",
    "box_size_px",
    "crop_track",
    "denormalize_mouth",
    "facial_map",
    "inter_ocular_px",
    "interpolate_boxes",
    "keyframe_indices",
    "landmark_jitter",
    "make_detector",
    "normalize_mouth",
    "smooth_landmarks",
    "square_box",
    "track_speaker",
    "track_strict",
    "with_mouth",
]
