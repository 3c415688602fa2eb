/**
 * Qwen2 / Qwen3 causal language models on libtorch: a Hugging Face checkout (config.json, the
 * safetensors weights, tokenizer.json and the chat template) loaded onto a device, the forward
 * over a KV cache with an adapter hook and activation traces for a hand-written backward, and
 * autoregressive decoding. <b>API</b>: {@link QwenModel}, {@link QwenTokenizer},
 * {@link QwenConfig}, {@link KvCache}, {@link ForwardTrace} and the records and interfaces they
 * take or return, {@link Generation}, {@link ChatTemplate}, {@link CheckpointException} and
 * {@link CheckpointWriter} (random-weight checkpoints for tests, benchmarks and the demo model);
 * {@link Scopes} is public for the engine's backward. The checkpoint reader, the safetensors and
 * strict-JSON parsers and the sampler are package-private. Who owns which tensors (the weights,
 * what the model returns, caches, traces) is stated in the
 * {@linkplain dev.relat.engine engine package's documentation}, section "Native memory".
 */
package dev.relat.model;
