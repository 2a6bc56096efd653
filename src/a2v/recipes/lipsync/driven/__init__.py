"""No-training lip sync: speech -> visemes / loudness -> driven landmarks -> mesh-warped face.

Entry point: :func:`a2v.recipes.lipsync.driven.generate.generate_driven` (photo or clip + audio ->
mp4). Used when no trained lip-sync model is given; a trained mouth model and renderer replace
the parameter and warp stages when present.
"""
