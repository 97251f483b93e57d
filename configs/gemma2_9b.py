"""gemma-2-9b-it (paper backbone, table 6 tunes its lr per benchmark; 5e-5 as the LIFT default here), bf16, fsdp.

Point model_path at a local Hugging Face download of gemma-2-9b-it (nothing is fetched at run
time), and the generator
at an OpenAI-compatible server (e.g. scripts/serve_vllm_generator.sh with Qwen2.5-72B-Instruct, as the paper).
NIAH in the paper: --config.train.lr=1e-4 --config.train.epochs=8.
"""

from lift_jax.config import base_config


def get_config():
    cfg = base_config()
    cfg.model_path = "models/gemma-2-9b-it"
    cfg.output_dir = "runs/gemma2_9b"
    cfg.dtype = "bfloat16"
    cfg.lora.rank = 128
    cfg.lora.alpha = 256.0
    cfg.train.lr = 5e-5
    cfg.train.epochs = 5
    cfg.train.batch_size = 4
    cfg.train.max_length = 1024
    cfg.mesh.data = 1
    cfg.mesh.fsdp = -1
    cfg.generator.kind = "openai"
    cfg.generator.model = "Qwen/Qwen2.5-72B-Instruct"
    cfg.generator.qa_per_sentence = 10
    cfg.generator.concurrency = 64
    return cfg
