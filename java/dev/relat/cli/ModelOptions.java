package dev.relat.cli;

import dev.relat.IoErrors;
import dev.relat.ops.Backend;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Locale;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch.ScalarType;
import picocli.CommandLine.Option;

/** Which model, on which device, in which dtype. */
public final class ModelOptions {
    @Option(names = "--model", paramLabel = "DIR",
            description = "a Hugging Face Qwen2/Qwen3 checkout (config.json, tokenizer files, *.safetensors);"
                    + " without it: the embedded demo model, whose weights are random")
    Path model;

    @Option(names = "--device", paramLabel = "DEV", defaultValue = "cpu",
            description = "cpu, cuda or cuda:N (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--dtype", paramLabel = "T", defaultValue = "auto",
            description = "f32, bf16, f16 or auto = f32 on cpu, bf16 on cuda (default: ${DEFAULT-VALUE})")
    String dtype;

    /** True when no --model was given. */
    boolean demo() {
        return model == null;
    }

    /** The --model folder, checked to exist. */
    Path checkout() {
        if (!Files.isDirectory(model)) {
            throw new UsageError("--model " + model + ": " + (Files.exists(model) ? "not a directory"
                    : IoErrors.notARegularFile(model)));
        }
        Path config = model.resolve("config.json");
        if (!Files.isRegularFile(config)) {
            throw new UsageError("--model " + model + ": " + (Files.exists(config, LinkOption.NOFOLLOW_LINKS)
                    ? "config.json is " + IoErrors.notARegularFile(config) : "no config.json")
                    + " (expected a Hugging Face checkout)");
        }
        return model;
    }

    boolean cuda() {
        String d = device.toLowerCase(Locale.ROOT);
        if (d.equals("cpu")) return false;
        if (d.equals("cuda") || d.matches("cuda:\\d+")) return true;
        throw new UsageError("--device must be cpu, cuda or cuda:N, got '" + device + "'");
    }

    /** The libtorch device; fails clearly when CUDA was asked for but is not there. */
    Device torchDevice() {
        if (cuda()) {
            if (!Backend.cudaAvailable()) {
                throw new UsageError("--device " + device + ": CUDA is not available here (libtorch sees no GPU"
                        + " or librelat_cuda was not built; build with nvcc and run with the 'cuda' Maven profile, -Pcuda)");
            }
            return new Device(device.equalsIgnoreCase("cuda") ? "cuda:0" : device.toLowerCase(Locale.ROOT));
        }
        return new Device("cpu");
    }

    ScalarType scalarType() {
        return switch (dtype.toLowerCase(Locale.ROOT)) {
            case "auto" -> cuda() ? ScalarType.BFloat16 : ScalarType.Float;
            case "f32", "fp32", "float32", "float" -> ScalarType.Float;
            case "bf16", "bfloat16" -> ScalarType.BFloat16;
            case "f16", "fp16", "float16", "half" -> ScalarType.Half;
            default -> throw new UsageError("--dtype must be f32, bf16, f16 or auto, got '" + dtype + "'");
        };
    }

    static String name(ScalarType t) {
        if (t.value == ScalarType.Float.value) return "f32";
        if (t.value == ScalarType.BFloat16.value) return "bf16";
        if (t.value == ScalarType.Half.value) return "f16";
        return t.toString();
    }
}
