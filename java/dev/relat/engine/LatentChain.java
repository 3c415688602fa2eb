package dev.relat.engine;

import dev.relat.model.QwenModel;
import dev.relat.ops.DType;
import dev.relat.ops.LatentStep;
import java.util.function.DoubleSupplier;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;
import org.bytedeco.pytorch.Tensor;

/**
 * A latent mode ({@link LatentMode}) as the link of the latent chain: one link turns the last
 * hidden state h [1, d] into the next input embedding e [1, d], and knows its own backward (dL/dh
 * from dL/de) from what its forward saved. One implementation per mode, forward and backward side
 * by side.
 */
interface LatentChain {
    /** The link from h: its embedding e and its backward. */
    Link link(Tensor h);

    /** One link taken: its output e and the backward of that link, dL/de [1, d] to dL/dh [1, d]. */
    record Link(Tensor e, UnaryOperator<Tensor> dhFromDe) {
        Tensor backward(Tensor de) {
            return dhFromDe.apply(de);
        }
    }

    /**
     * The chain of options' latent mode on model. The realign matrix and the target norm are
     * computed once per model, when a link first needs them; the suppliers do that.
     */
    static LatentChain of(Options options, QwenModel model, Supplier<Tensor> realignMatrix, DoubleSupplier targetNorm) {
        return switch (options.latentMode()) {
            case SOFT -> new Soft(model.weights().lmHead(), model.weights().embedTokens(), options.temperatureLatent());
            case REALIGN -> new Realign(realignMatrix, targetNorm, DType.of(model.dtype()));
            case IDENTITY -> new Identity(targetNorm);
        };
    }

    /** ReLAT's default: e = softmax(U h / tau)^T E; the forward saves what the backward needs. */
    record Soft(Tensor lmHead, Tensor embeddings, double temperature) implements LatentChain {
        @Override
        public Link link(Tensor h) {
            LatentStep.Soft saved = LatentStep.softForward(h, lmHead, embeddings, temperature);
            return new Link(saved.e(),
                    de -> LatentStep.softBackward(h, lmHead, embeddings, temperature, saved, de));
        }
    }

    /** LatentMAS: e = h W_a rescaled to the mean row norm of E; the forward saves a = h W_a. */
    record Realign(Supplier<Tensor> matrix, DoubleSupplier targetNorm, DType dtype) implements LatentChain {
        @Override
        public Link link(Tensor h) {
            LatentStep.Realign saved = LatentStep.realignForward(h, matrix.get(), targetNorm.getAsDouble());
            return new Link(saved.e(),
                    de -> LatentStep.realignBackward(saved.a(), matrix.get(), targetNorm.getAsDouble(), de, dtype));
        }
    }

    /** e = h rescaled to the mean row norm of E. */
    record Identity(DoubleSupplier targetNorm) implements LatentChain {
        @Override
        public Link link(Tensor h) {
            return new Link(LatentStep.identityForward(h, targetNorm.getAsDouble()),
                    de -> LatentStep.identityBackward(h, targetNorm.getAsDouble(), de));
        }
    }
}
