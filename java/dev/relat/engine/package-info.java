/**
 * The ReLAT engine: open a Qwen checkout once, then solve questions one at a time, each with its
 * own {@link Options}. Per question the engine renders the prompt with the checkout's chat
 * template, thinks in K latent vectors, trains a fresh LoRA adapter on reconstructing the question
 * from them (test-time training), decodes the answer and drops the adapter, so nothing learned on
 * one question reaches the next. The multi-agent methods run a team of {@link Agents} over a shared
 * KV working memory (LatentMAS's sequential setting). <b>API</b>: {@link Engine}, {@link Options},
 * {@link Result}, {@link Method}, {@link Agents}, {@link LatentMode}, {@link AnswerContext},
 * {@link Phase}, {@link PhaseListener} and {@link QuestionException}; everything else here is
 * package-private.
 *
 * <pre>{@code
 * try (Engine engine = Engine.open(Path.of("/models/Qwen3-8B"), new Device("cuda:0"), ScalarType.BFloat16)) {
 *     Result r = engine.solve("What is 17 * 3?", Options.builder().method(Method.RELAT).build());
 *     System.out.println(r.answer() + " " + r.losses());
 * }
 * }</pre>
 *
 * <h2 id="native-memory">Native memory</h2>
 *
 * <p>A tensor is a small Java handle to a libtorch tensor whose memory, on the host or the device,
 * lies outside the Java heap; the garbage collector sees only the handles, so it frees that memory
 * late, if at all. These rules hold for this package, for {@link dev.relat.model} and for
 * {@link dev.relat.ops}.
 *
 * <ul>
 *   <li><b>Returned tensors are the caller's.</b> A tensor a relat method returns (alone or in
 *       a record) is new: it joins the innermost {@code PointerScope} open on the calling thread
 *       and is freed when that scope closes; with no scope open, only its {@code close()} or the
 *       garbage collector frees it. This covers {@link QwenModel}'s {@code ids}, {@code embed},
 *       {@code hidden}, {@code logits}, {@code lastLogits}, {@code lmHead} and {@code positions},
 *       {@link KvCache}'s {@code keys} and {@code values} views, every op that returns tensors,
 *       and {@linkplain CheckpointWriter#randomWeights CheckpointWriter.randomWeights}. So wrap
 *       your own work with the model or the ops in a
 *       {@code try (PointerScope scope = new PointerScope())}; copy what must outlive it to the
 *       host, or {@code retainReference()} the tensor and {@code close()} it yourself later.
 *       Scopes are per thread.
 *   <li><b>Borrowed tensors: never close them.</b> The model's weights
 *       ({@link QwenModel#weights()}, every tensor reachable from it, {@link QwenModel#invFreq()})
 *       and what a {@link ForwardTrace} hands out (close the trace instead). A view (a
 *       {@code narrow}, a cache's {@code keys}) shares its base's memory: closing it frees only
 *       the handle.
 *   <li><b>The weights belong to the model, which has no close.</b>
 *       {@linkplain QwenModel#load QwenModel.load} (and so {@linkplain Engine#open Engine.open})
 *       copies every weight onto the device once, past any scope; the safetensors files are mapped
 *       only while loading. Neither {@code QwenModel} nor {@link QwenWeights} can be closed and
 *       {@link Engine#close} does not free them: the garbage collector frees them once nothing
 *       references the model or its weights.
 *   <li><b>Closeable objects: whoever makes one closes it.</b> {@link Engine} (the realign
 *       matrix it cached and the tokenizer {@linkplain Engine#open open} made; not a model or
 *       tokenizer passed to its constructor), {@link QwenTokenizer} (the native Rust tokenizer),
 *       {@code KvCache} (every layer's key and value buffers), {@code ForwardBuffers} (a
 *       decode's preallocated activations; what a forward returns through them is a view, valid
 *       until their next forward), {@code ForwardTrace} (the recorded
 *       activations, and the row offsets and positions of the batched forward it recorded) and the
 *       ops' {@link AdamW} (its host pointer arrays only: its moment tensors
 *       belong to the scope that was open when it was made). Their buffers survive scopes; an
 *       unclosed cache or trace waits for the garbage collector.
 *   <li><b>A solve cleans up after itself.</b> {@linkplain Engine#solve Engine.solve} (and
 *       {@linkplain Engine#solveAll Engine.solveAll}, for every question of its batch) needs no
 *       scope from its caller: it opens one around the question, and within it one per training
 *       step, per decoder layer (forward and backward) and per decode step. The question's KV
 *       caches, LoRA adapter, key/value gradient buffers, forward traces and optimizer are closed
 *       when it ends, normally or by an exception, and its scope frees the rest. What stays in the
 *       engine: the realign matrix W_a ([hidden, hidden] fp32, made by the first
 *       {@link LatentMode#REALIGN} question, remade when realignLambda changes, freed by close)
 *       and one double, the mean row norm of the embeddings. A {@link Result} is plain Java data
 *       with no native memory. On CUDA, libtorch's caching allocator keeps freed blocks reserved
 *       for reuse instead of returning them to the driver; {@link Result#peakDeviceBytes()} counts
 *       allocated bytes.
 *   <li><b>Threads.</b> {@linkplain Engine#solve Engine.solve} may be called from any thread;
 *       an engine runs one question at a time and the others wait. Nothing else is synchronised:
 *       do not close an engine while it solves, do not run two engines on one model or one device
 *       at once (the peak-memory figure is the device's), and use a {@code QwenModel},
 *       {@code KvCache}, {@code ForwardTrace} or {@code QwenTokenizer} from one thread at a time,
 *       leaving an engine's model and tokenizer to it while it solves.
 * </ul>
 */
package dev.relat.engine;

import dev.relat.model.CheckpointWriter;
import dev.relat.model.ForwardTrace;
import dev.relat.model.KvCache;
import dev.relat.model.QwenModel;
import dev.relat.model.QwenTokenizer;
import dev.relat.model.QwenWeights;
import dev.relat.ops.AdamW;
