"""Face recipe: speech -> face photo (Speech2Face voice encoder, guided 64 px DDPM, diffusion super-resolution).

    from a2v.recipes.face.pipeline import FacePipeline
    faces = FacePipeline.from_pretrained("models/face").generate(audio="voice.wav", num=4)  # uint8 (4,H,W,3)
"""
