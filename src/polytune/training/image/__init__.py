"""Image-generation fine-tuning on diffusers pipelines (the `image_generation` recipe's parts):
timestep sampling, cached latents and prompt embeddings, the flow-matching step, sampling."""
