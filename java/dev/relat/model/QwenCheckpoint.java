package dev.relat.model;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import dev.relat.IoErrors;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A Hugging Face checkout directory: config.json plus model.safetensors, or shards listed in
 * model.safetensors.index.json. {@link #open} checks everything that can be checked without
 * reading tensor data: the config, every safetensors header, that each tensor the architecture
 * needs is present with a floating dtype and the shape the config implies. {@link #load} then
 * copies the weights from the memory-mapped files into tensors on the target device and dtype.
 */
final class QwenCheckpoint implements AutoCloseable {
    public static final String CONFIG = "config.json";
    public static final String SINGLE = "model.safetensors";
    public static final String INDEX = "model.safetensors.index.json";

    private final Path directory;
    private final QwenConfig config;
    private final Map<String, SafetensorsFile> tensorFile;
    private final List<SafetensorsFile> files;
    private FiniteCheck finite;

    private QwenCheckpoint(Path directory, QwenConfig config, Map<String, SafetensorsFile> tensorFile,
            List<SafetensorsFile> files) {
        this.directory = directory;
        this.config = config;
        this.tensorFile = tensorFile;
        this.files = files;
    }

    /** Opens and validates a checkout directory (headers only; no tensor data is read). */
    public static QwenCheckpoint open(Path directory) {
        Path configPath = directory.resolve(CONFIG);
        if (!Files.isRegularFile(configPath)) {
            throw new CheckpointException(configPath + ": " + IoErrors.notARegularFile(configPath));
        }
        QwenConfig config = QwenConfig.read(configPath);
        Map<String, SafetensorsFile> tensorFile = new LinkedHashMap<>();
        List<SafetensorsFile> files = new ArrayList<>();
        Path index = directory.resolve(INDEX);
        String where;
        if (Files.isRegularFile(index)) {
            where = index.toString();
            Map<String, String> weightMap = readIndex(index);
            Map<String, SafetensorsFile> byFile = new LinkedHashMap<>();
            for (Map.Entry<String, String> e : weightMap.entrySet()) {
                SafetensorsFile f = byFile.get(e.getValue());
                if (f == null) {
                    Path shard = directory.resolve(e.getValue()).normalize();
                    if (!shard.startsWith(directory.normalize()) || !Files.isRegularFile(shard)) {
                        throw new CheckpointException(index + ": tensor '" + e.getKey() + "' is mapped to '"
                                + e.getValue() + "', which is not a file in " + directory);
                    }
                    f = SafetensorsFile.open(shard);
                    byFile.put(e.getValue(), f);
                    files.add(f);
                }
                if (!f.entries().containsKey(e.getKey())) {
                    throw new CheckpointException(index + ": tensor '" + e.getKey() + "' is mapped to " + f.path()
                            + ", which does not contain it");
                }
                tensorFile.put(e.getKey(), f);
            }
        } else {
            Path single = directory.resolve(SINGLE);
            if (!Files.isRegularFile(single)) {
                for (Path p : new Path[] {single, index}) {
                    if (Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
                        throw new CheckpointException(p + ": " + IoErrors.notARegularFile(p));
                    }
                }
                throw new CheckpointException(directory + ": neither " + SINGLE + " nor " + INDEX + " is present");
            }
            where = single.toString();
            SafetensorsFile f = SafetensorsFile.open(single);
            files.add(f);
            for (String name : f.entries().keySet()) tensorFile.put(name, f);
        }
        // What exists is checked before what the config expects is enumerated: a config claiming
        // 2^31 layers must fail here, not after building billions of names.
        checkLayerCount(where, configPath, config, tensorFile.keySet());
        Map<String, long[]> expected = QwenNames.expectedShapes(config);
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            SafetensorsFile f = tensorFile.get(e.getKey());
            if (f == null) throw new CheckpointException(where + ": tensor '" + e.getKey() + "' is missing");
            SafetensorsFile.Entry entry = f.entry(e.getKey());
            if (!Arrays.equals(entry.shape(), e.getValue())) {
                throw new CheckpointException(f.path() + ": tensor '" + e.getKey() + "' has shape "
                        + Arrays.toString(entry.shape()) + "; " + configPath.getFileName() + " implies "
                        + Arrays.toString(e.getValue()));
            }
            if (!entry.dtype().isWeightType()) {
                throw new CheckpointException(f.path() + ": tensor '" + e.getKey() + "' has dtype " + entry.dtype()
                        + "; weights must be F32, BF16 or F16");
            }
        }
        List<String> unused = tensorFile.keySet().stream()
                .filter(name -> !expected.containsKey(name) && !ignored(name, config)).toList();
        if (!unused.isEmpty()) {
            throw new CheckpointException(where + ": " + unused.size() + " tensor(s) that the model of "
                    + configPath.getFileName() + " does not use, first '" + unused.get(0)
                    + "' (does the config describe this checkpoint?)");
        }
        return new QwenCheckpoint(directory, config, tensorFile, files);
    }

    private static final Pattern LAYER = Pattern.compile("^model\\.layers\\.(\\d+)\\.");

    /** The checkpoint must have tensors of layers 0 .. num_hidden_layers-1 and of no other layer. */
    private static void checkLayerCount(String where, Path configPath, QwenConfig config, Set<String> names) {
        TreeSet<Long> layers = new TreeSet<>();
        for (String name : names) {
            Matcher m = LAYER.matcher(name);
            if (m.find()) {
                try {
                    layers.add(Long.parseLong(m.group(1)));
                } catch (NumberFormatException e) {
                    throw new CheckpointException(where + ": tensor '" + name + "' has a layer index out of range");
                }
            }
        }
        long n = config.numHiddenLayers();
        String have = " has tensors of " + layers.size() + " layer(s)"
                + (layers.isEmpty() ? "" : ", indices " + layers.first() + " .. " + layers.last());
        if (!layers.isEmpty() && layers.last() >= n) {
            throw new CheckpointException(configPath + ": field 'num_hidden_layers' is " + n + " but " + where + have);
        }
        if (layers.size() < n) {
            String missing = names.contains(QwenNames.EMBED) ? null : QwenNames.EMBED;
            for (long i = 0; missing == null; i++) {
                if (!layers.contains(i)) missing = QwenNames.layer((int) i, QwenNames.INPUT_NORM);
            }
            throw new CheckpointException(where + ": tensor '" + missing + "' is missing (" + configPath.getFileName()
                    + " has 'num_hidden_layers' " + n + "; the checkpoint" + have + ")");
        }
    }

    /** Tensors a Hugging Face checkpoint may carry that the model rebuilds or ties. */
    private static boolean ignored(String name, QwenConfig config) {
        return name.endsWith(".rotary_emb.inv_freq")
                || (name.equals(QwenNames.LM_HEAD) && config.tieWordEmbeddings());
    }

    private static Map<String, String> readIndex(Path index) {
        JsonObject root;
        try {
            root = StrictJson.object(Files.readString(index, StandardCharsets.UTF_8), index.toString());
        } catch (IOException e) {
            throw new CheckpointException(index + ": cannot read: " + IoErrors.reason(e), e);
        }
        JsonElement map = root.get("weight_map");
        if (map == null || !map.isJsonObject()) throw new CheckpointException(index + ": field 'weight_map' is missing");
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : map.getAsJsonObject().entrySet()) {
            if (!e.getValue().isJsonPrimitive() || !e.getValue().getAsJsonPrimitive().isString()) {
                throw new CheckpointException(index + ": field 'weight_map' entry '" + e.getKey()
                        + "' is not a file name");
            }
            out.put(e.getKey(), e.getValue().getAsString());
        }
        return out;
    }

    public Path directory() {
        return directory;
    }

    public QwenConfig config() {
        return config;
    }

    /** Loads the weights in the checkpoint's own dtype onto the device. */
    public QwenWeights load(Device device) {
        return load(device, config.scalarType());
    }

    /**
     * Loads every weight onto the device in the given dtype (F32, BF16 or F16). Each tensor is
     * copied once, from the file mapping into its destination; q/k/v and gate/up land directly in
     * their fused matrices.
     */
    public QwenWeights load(Device device, ScalarType dtype) {
        if (dtype != ScalarType.Float && dtype != ScalarType.BFloat16 && dtype != ScalarType.Half) {
            throw new IllegalArgumentException("weights load as Float, BFloat16 or Half, not " + dtype);
        }
        QwenConfig c = config;
        try (PointerScope scope = new PointerScope()) {
            finite = new FiniteCheck();
            TensorOptions options = Tensors.options(dtype, device);
            long d = c.hiddenSize();
            long nq = (long) c.numAttentionHeads() * c.headDim();
            long nkv = (long) c.numKeyValueHeads() * c.headDim();
            long inter = c.intermediateSize();
            Tensor embed = read(QwenNames.EMBED, options, c.vocabSize(), d);
            List<LayerWeights> layers = new ArrayList<>();
            for (int i = 0; i < c.numHiddenLayers(); i++) {
                Tensor qkv = Tensors.keep(Tensors.empty(options, c.qkvRows(), d));
                copy(QwenNames.layer(i, QwenNames.Q), qkv.narrow(0, 0, nq));
                copy(QwenNames.layer(i, QwenNames.K), qkv.narrow(0, nq, nkv));
                copy(QwenNames.layer(i, QwenNames.V), qkv.narrow(0, nq + nkv, nkv));
                Tensor qkvBias = null;
                if (c.qkvBias()) {
                    qkvBias = Tensors.keep(Tensors.empty(options, c.qkvRows()));
                    copy(QwenNames.layer(i, QwenNames.Q_BIAS), qkvBias.narrow(0, 0, nq));
                    copy(QwenNames.layer(i, QwenNames.K_BIAS), qkvBias.narrow(0, nq, nkv));
                    copy(QwenNames.layer(i, QwenNames.V_BIAS), qkvBias.narrow(0, nq + nkv, nkv));
                }
                Tensor gateUp = Tensors.keep(Tensors.empty(options, 2 * inter, d));
                copy(QwenNames.layer(i, QwenNames.GATE), gateUp.narrow(0, 0, inter));
                copy(QwenNames.layer(i, QwenNames.UP), gateUp.narrow(0, inter, inter));
                layers.add(LayerWeights.of(c,
                        read(QwenNames.layer(i, QwenNames.INPUT_NORM), options, d),
                        qkv, qkvBias,
                        read(QwenNames.layer(i, QwenNames.O), options, d, nq),
                        c.qkNorm() ? read(QwenNames.layer(i, QwenNames.Q_NORM), options, c.headDim()) : null,
                        c.qkNorm() ? read(QwenNames.layer(i, QwenNames.K_NORM), options, c.headDim()) : null,
                        read(QwenNames.layer(i, QwenNames.POST_NORM), options, d),
                        gateUp,
                        read(QwenNames.layer(i, QwenNames.DOWN), options, d, inter)));
            }
            Tensor norm = read(QwenNames.NORM, options, d);
            Tensor lmHead = c.tieWordEmbeddings() ? embed : read(QwenNames.LM_HEAD, options, c.vocabSize(), d);
            finite.verify();
            return new QwenWeights(c, embed, layers, norm, lmHead);
        } finally {
            finite = null;
            for (SafetensorsFile f : files) f.close();
        }
    }

    /**
     * NaN or infinite weights make every answer garbage without an error: each loaded tensor is
     * reduced to one flag on its device, and the flags cross to the host once, at the end.
     */
    private final class FiniteCheck {
        private final List<String> names = new ArrayList<>();
        private final TensorVector flags = new TensorVector();

        void add(String name, Tensor loaded) {
            names.add(name);
            flags.push_back(torch.isfinite(loaded).all());
        }

        void verify() {
            if (names.isEmpty()) return;
            Tensor all = torch.stack(flags).to(ScalarType.Byte).cpu().contiguous();
            byte[] ok = new byte[names.size()];
            new BytePointer(all.data_ptr()).get(ok);
            for (int i = 0; i < ok.length; i++) {
                if (ok[i] == 0) {
                    String name = names.get(i);
                    throw new CheckpointException(tensorFile.get(name).path() + ": tensor '" + name
                            + "' holds NaN or infinite values");
                }
            }
        }
    }

    private Tensor read(String name, TensorOptions options, long... shape) {
        Tensor t = Tensors.keep(Tensors.empty(options, shape));
        copy(name, t);
        return t;
    }

    private void copy(String name, Tensor destination) {
        tensorFile.get(name).copyInto(name, destination);
        finite.add(name, destination);
    }

    /** Releases the file mappings. */
    @Override
    public void close() {
        for (SafetensorsFile f : files) f.close();
    }
}
