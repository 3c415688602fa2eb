package dev.relat.cli;

import dev.relat.engine.Options;
import dev.relat.engine.Phase;
import dev.relat.engine.PhaseListener;
import dev.relat.engine.Result;
import dev.relat.model.CheckpointWriter;
import dev.relat.model.QwenConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A stand-in for the engine in the command-line tests: records what it was asked and answers with
 * a given function, reporting phases to the listener as the engine does. Not a model.
 */
final class FakeEngine implements SolveEngine {
    /** One solve call. */
    record Call(String question, Options options) {}

    final List<Call> calls = new ArrayList<>();
    final Path checkout;
    private final BiFunction<String, Options, String> answers;
    boolean closed;

    FakeEngine(Path checkout, BiFunction<String, Options, String> answers) {
        this.checkout = checkout;
        this.answers = answers;
    }

    /** A factory that hands out engines answering with fn, remembered in opened. */
    static final class Factory implements SolveEngine.Factory {
        final List<FakeEngine> opened = new ArrayList<>();
        private final BiFunction<String, Options, String> answers;

        Factory(BiFunction<String, Options, String> answers) {
            this.answers = answers;
        }

        @Override
        public SolveEngine open(Path checkout, Device device, ScalarType dtype) {
            FakeEngine e = new FakeEngine(checkout, answers);
            opened.add(e);
            return e;
        }

        List<Call> calls() {
            return opened.stream().flatMap(e -> e.calls.stream()).toList();
        }
    }

    @Override
    public Result solve(String question, Options options, PhaseListener listener) {
        calls.add(new Call(question, options));
        Map<Phase, Long> nanos = new EnumMap<>(Phase.class);
        listener.questionStart();
        try {
            step(listener, nanos, Phase.PREFILL, 1_000_000);
            List<Double> losses = new ArrayList<>();
            if (options.method().thinksInLatents()) step(listener, nanos, Phase.LATENT_CHAIN, 2_000_000);
            if (options.method().trains()) {
                double loss = 10 + (question.length() % 7) / 10.0;
                for (int s = 0; s <= options.updateSteps(); s++) {
                    step(listener, nanos, Phase.RECONSTRUCTION_FORWARD, 3_000_000);
                    losses.add(loss);
                    loss *= 0.9;
                    if (s < options.updateSteps()) {
                        step(listener, nanos, Phase.BACKWARD, 4_000_000);
                        step(listener, nanos, Phase.UPDATE, 500_000);
                        step(listener, nanos, Phase.LATENT_CHAIN, 2_000_000);
                    }
                }
            }
            step(listener, nanos, Phase.ANSWER_DECODE, 5_000_000);
            String answer = answers.apply(question, options);
            return new Result(options.method(), answer, question.length(), options.method().thinksInLatents()
                    ? options.latentSteps() : 0, answer.length(), losses, nanos, 1234567);
        } finally {
            listener.questionEnd();
        }
    }

    private static void step(PhaseListener l, Map<Phase, Long> nanos, Phase p, long n) {
        l.begin(p);
        nanos.merge(p, n, Long::sum);
        l.end(p);
    }

    @Override
    public QwenConfig config() {
        return CheckpointWriter.config("qwen3", 64, 128, 2, 2, 1, 64, 1000, true, "float32");
    }

    @Override
    public void close() {
        closed = true;
    }
}
