package dev.relat.engine;

import org.bytedeco.pytorch.Tensor;

/**
 * One training loss of a question and, when asked, its backward into the LoRA gradients: the
 * reconstruction loss of ReLAT ({@link RelatStep}) or the next-token loss of query-lm
 * ({@link QueryLmStep}). A step owns the buffers it reuses from one update to the next.
 */
interface TrainingStep extends AutoCloseable {
    /**
     * Computes the loss on the question tokens targets (its value is added to the question's
     * losses); when update, accumulates its gradients into lora's (no optimizer step).
     */
    void run(Lora lora, Tensor targets, boolean update);

    @Override
    void close();
}
