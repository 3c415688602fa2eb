package dev.relat.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.relat.engine.AnswerContext;
import dev.relat.engine.LatentMode;
import dev.relat.engine.Method;
import dev.relat.engine.Options;
import dev.relat.engine.Phase;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Argument parsing, errors and output of relat solve / profile, against a fake engine. */
class CommandLineTest {
    @TempDir
    Path tmp;

    private FakeEngine.Factory engines() {
        return new FakeEngine.Factory((q, o) -> "The answer is \\boxed{5}.");
    }

    private CliTestSupport.Run run(FakeEngine.Factory engines, String... args) {
        return CliTestSupport.run(engines, tmp.resolve("cache"), args);
    }

    @Test
    void everyOptionMapsOntoTheBuilder() throws IOException {
        Path model = CliTestSupport.fakeCheckout(tmp.resolve("m"));
        FakeEngine.Factory engines = engines();
        CliTestSupport.Run r = run(engines, "solve", "--model", model.toString(), "--method", "latent", "-K", "4",
                "--latent-mode", "realign", "--tau", "0.5", "-N", "2", "--lr", "1e-3", "--rank", "4", "--alpha", "8",
                "--targets", "q,v,down", "--adam-beta1", "0.8", "--adam-beta2", "0.99", "--adam-eps", "1e-6",
                "--weight-decay", "0.01", "--realign-lambda", "1e-4", "--no-thinking", "--answer-context", "question",
                "--max-new-tokens", "7", "--temperature", "0.7", "--top-p", "0.9", "--top-k", "5", "--seed", "9",
                "--system-prompt", "Be brief.", "--instruction", "Say it again.", "What", "is", "2+3?");
        assertEquals(0, r.exit(), r.err());
        Options expected = Options.builder().method(Method.LATENT).latentSteps(4).latentMode(LatentMode.REALIGN)
                .temperatureLatent(0.5).updateSteps(2).learningRate(1e-3).loraRank(4).loraAlpha(8)
                .loraTargets(EnumSet.of(Options.Target.Q, Options.Target.V, Options.Target.DOWN)).adamBetas(0.8, 0.99)
                .adamEps(1e-6).weightDecay(0.01).realignLambda(1e-4).thinking(false)
                .answerContext(AnswerContext.QUESTION).maxNewTokens(7).temperature(0.7).topP(0.9).topK(5).seed(9)
                .systemPrompt("Be brief.").reconstructionInstruction("Say it again.").build();
        assertEquals(1, engines.calls().size());
        assertEquals(expected, engines.calls().get(0).options());
        assertEquals("What is 2+3?", engines.calls().get(0).question());
        assertEquals(model, engines.opened.get(0).checkout);
        assertTrue(engines.opened.get(0).closed, "the engine is closed after the solve");
    }

    @Test
    void defaultsAreTheEnginesDefaults() throws IOException {
        Path model = CliTestSupport.fakeCheckout(tmp.resolve("m"));
        FakeEngine.Factory engines = engines();
        CliTestSupport.Run r = run(engines, "solve", "--model", model.toString(), "q?");
        assertEquals(0, r.exit(), r.err());
        assertEquals(Options.defaults(), engines.calls().get(0).options());
        CliTestSupport.Run help = run(engines, "solve", "--help");
        assertTrue(help.out().contains("latent thought length, in steps (default: " + Options.defaults().latentSteps() + ")"),
                help.out());
    }

    /** --agents FILE replaces the team; a multi-agent method runs realign unless --latent-mode says otherwise. */
    @Test
    void agentsFileAndTheMultiAgentLatentMode() throws IOException {
        Path model = CliTestSupport.fakeCheckout(tmp.resolve("m"));
        Path team = tmp.resolve("team.json");
        Files.writeString(team, "{\"agents\": [{\"role\": \"solver\", \"prompt\": \"Solve it.\"},"
                + " {\"role\": \"judge\", \"prompt\": \"Give the answer.\"}]}");
        FakeEngine.Factory engines = engines();
        assertEquals(0, run(engines, "solve", "--model", model.toString(), "-m", "latent-mas", "--agents",
                team.toString(), "q").exit());
        Options o = engines.calls().get(0).options();
        assertEquals(Method.LATENT_MAS, o.method());
        assertEquals(LatentMode.REALIGN, o.latentMode());
        assertEquals(List.of("solver", "judge"), o.agents().agents().stream().map(a -> a.role()).toList());
        assertEquals(0, run(engines, "solve", "--model", model.toString(), "-m", "relat-mas", "--latent-mode", "soft",
                "q").exit());
        assertEquals(LatentMode.SOFT, engines.calls().get(1).options().latentMode());
        assertEquals(Options.defaults().agents(), engines.calls().get(1).options().agents());

        Path bad = tmp.resolve("bad.json");
        Files.writeString(bad, "{\"agents\": [{\"role\": \"solver\"}]}");
        CliTestSupport.Run r = run(engines, "solve", "--model", model.toString(), "-m", "text-mas", "--agents",
                bad.toString(), "q");
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().startsWith("relat: --agents: agents file " + bad + ": agent 0: field \"prompt\""), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }

    /** --question (repeated) and --questions FILE: solved together, printed one after another. */
    @Test
    void severalQuestionsAreSolvedTogether() throws IOException {
        Path model = CliTestSupport.fakeCheckout(tmp.resolve("m"));
        FakeEngine.Factory engines = engines();
        CliTestSupport.Run r = run(engines, "solve", "--model", model.toString(), "--question", "one?", "--question",
                "two?");
        assertEquals(0, r.exit(), r.err());
        assertEquals(List.of("one?", "two?"), engines.calls().stream().map(FakeEngine.Call::question).toList());
        assertTrue(r.out().contains("== question 2 of 2"), r.out());
        Path file = tmp.resolve("questions.txt");
        Files.writeString(file, "first?\n\n  second?  \nthird?\n");
        FakeEngine.Factory more = engines();
        CliTestSupport.Run json = run(more, "solve", "--model", model.toString(), "--json", "--questions", file.toString());
        assertEquals(0, json.exit(), json.err());
        assertEquals(List.of("first?", "second?", "third?"), more.calls().stream().map(FakeEngine.Call::question).toList());
        assertEquals(3, json.out().strip().split("\n").length, "one JSON object per line");
        assertEquals(2, run(engines(), "solve", "--model", model.toString(), "--question", "a?", "b?").exit());
        Files.writeString(file, "\n  \n");
        CliTestSupport.Run empty = run(engines(), "solve", "--model", model.toString(), "--questions", file.toString());
        assertEquals(2, empty.exit());
        assertTrue(empty.err().contains("no question in it"), empty.err());
        assertEquals(2, run(engines(), "solve", "--model", model.toString()).exit());
    }

    @Test
    void emptySystemPromptSendsNone() throws IOException {
        Path model = CliTestSupport.fakeCheckout(tmp.resolve("m"));
        FakeEngine.Factory engines = engines();
        assertEquals(0, run(engines, "solve", "--model", model.toString(), "--system-prompt", "", "q").exit());
        assertEquals(null, engines.calls().get(0).options().systemPrompt());
    }

    @ParameterizedTest
    @ValueSource(strings = {"--rank=0", "--lr=-1", "--lr=1e30", "--top-p=1.5", "--tau=0", "--latent-steps=0",
        "--max-new-tokens=-1", "--max-context=-1", "--top-k=-2", "--update-steps=-1"})
    void invalidOptionValuesAreOneLineAndExitTwo(String arg) throws IOException {
        Path model = CliTestSupport.fakeCheckout(tmp.resolve("m"));
        FakeEngine.Factory engines = engines();
        CliTestSupport.Run r = run(engines, "solve", "--model", model.toString(), arg, "q");
        assertEquals(2, r.exit(), r.err());
        assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
        assertTrue(r.err().startsWith("relat: ") && r.err().contains(arg.substring(0, arg.indexOf('=')) + " must be"),
                "the message names the flag as typed: " + r.err());
        assertTrue(engines.opened.isEmpty(), "no engine is opened for invalid options");
    }

    @Test
    void unknownNamesAreReportedWithTheOption() throws IOException {
        Path model = CliTestSupport.fakeCheckout(tmp.resolve("m"));
        for (String[] args : List.of(new String[] {"--method", "bogus"}, new String[] {"--latent-mode", "hard"},
                new String[] {"--targets", "q,zz"}, new String[] {"--answer-context", "x"},
                new String[] {"--rank", "eight"}, new String[] {"--bogus-option"})) {
            String[] full = new String[args.length + 4];
            full[0] = "solve";
            full[1] = "--model";
            full[2] = model.toString();
            System.arraycopy(args, 0, full, 3, args.length);
            full[full.length - 1] = "q";
            CliTestSupport.Run r = run(engines(), full);
            assertEquals(2, r.exit(), String.join(" ", args) + ": " + r.err());
            String first = r.err().lines().findFirst().orElse("");
            assertTrue(first.startsWith("relat: ") && first.contains(args[0]), first);
            assertTrue(r.err().contains("try 'relat solve --help'"), r.err());
        }
    }

    @Test
    void badModelDeviceDtypeAndMissingQuestion() throws IOException {
        Path model = CliTestSupport.fakeCheckout(tmp.resolve("m"));
        CliTestSupport.Run noDir = run(engines(), "solve", "--model", tmp.resolve("absent").toString(), "q");
        assertEquals(2, noDir.exit());
        assertTrue(noDir.err().contains("absent: no such file"), noDir.err());
        Files.writeString(tmp.resolve("plain"), "x");
        CliTestSupport.Run file = run(engines(), "solve", "--model", tmp.resolve("plain").toString(), "q");
        assertTrue(file.err().contains("plain: not a directory"), file.err());
        Path dirConfig = tmp.resolve("dir-config");
        Files.createDirectories(dirConfig.resolve("config.json"));
        CliTestSupport.Run dirCfg = run(engines(), "solve", "--model", dirConfig.toString(), "q");
        assertTrue(dirCfg.err().contains("config.json is a directory, not a file"), dirCfg.err());
        CliTestSupport.Run noConfig = run(engines(), "solve", "--model", tmp.toString(), "q");
        assertEquals(2, noConfig.exit());
        assertTrue(noConfig.err().contains("no config.json"), noConfig.err());
        CliTestSupport.Run device = run(engines(), "solve", "--model", model.toString(), "--device", "tpu", "q");
        assertEquals(2, device.exit());
        assertTrue(device.err().contains("--device must be cpu, cuda or cuda:N"), device.err());
        CliTestSupport.Run dtype = run(engines(), "solve", "--model", model.toString(), "--dtype", "f8", "q");
        assertEquals(2, dtype.exit());
        assertTrue(dtype.err().contains("--dtype"), dtype.err());
        CliTestSupport.Run noQuestion = run(engines(), "solve", "--model", model.toString());
        assertEquals(2, noQuestion.exit());
        assertTrue(noQuestion.err().contains("QUESTION"), noQuestion.err());
        CliTestSupport.Run noCommand = run(engines());
        assertEquals(2, noCommand.exit());
        CliTestSupport.Run unknown = run(engines(), "frobnicate");
        assertEquals(2, unknown.exit());
    }

    @ParameterizedTest
    @ValueSource(strings = {"solve", "profile", "eval", "bench", "selftest"})
    void helpOnEveryCommand(String command) {
        CliTestSupport.Run r = run(engines(), command, "--help");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("Usage: relat " + command), r.out());
        assertTrue(r.out().contains("--help"), r.out());
    }

    @Test
    void topLevelHelpAndVersion() {
        CliTestSupport.Run help = run(engines(), "--help");
        assertEquals(0, help.exit());
        for (String c : List.of("solve", "profile", "eval", "bench", "selftest")) assertTrue(help.out().contains(c), c);
        CliTestSupport.Run version = run(engines(), "--version");
        assertEquals(0, version.exit());
        assertTrue(version.out().startsWith("relat "), version.out());
    }

    @Test
    void textOutputHasAnswerLossesTokensAndPhases() throws IOException {
        Path model = CliTestSupport.fakeCheckout(tmp.resolve("m"));
        CliTestSupport.Run r = run(engines(), "solve", "--model", model.toString(), "-N", "3", "What is 2+3?");
        assertEquals(0, r.exit(), r.err());
        String out = r.out();
        assertTrue(out.contains("The answer is \\boxed{5}."), out);
        assertTrue(out.contains("tokens    prompt 12, latent 16, answer 24"), out);
        assertEquals(4, out.lines().filter(l -> l.matches("  step \\d+ +\\d+\\.\\d{6}.*")).count(), out);
        assertTrue(out.contains("(after the last update)"), out);
        for (Phase p : Phase.values()) assertTrue(out.contains(p.label()), p.label());
        assertFalse(out.contains("RANDOM"), "a real checkout is not called random");
    }

    @Test
    void jsonOutputIsOneObjectWithEveryResultField() throws IOException {
        Path model = CliTestSupport.fakeCheckout(tmp.resolve("m"));
        CliTestSupport.Run r = run(engines(), "solve", "--model", model.toString(), "--json", "-N", "2", "--seed", "3",
                "q?");
        assertEquals(0, r.exit(), r.err());
        assertEquals(1, r.out().strip().lines().count(), "one line of JSON");
        JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
        assertFalse(o.get("demo").getAsBoolean());
        assertEquals("q?", o.get("question").getAsString());
        assertEquals(3, o.getAsJsonObject("options").get("seed").getAsLong());
        JsonObject res = o.getAsJsonObject("result");
        assertEquals("relat", res.get("method").getAsString());
        assertEquals("The answer is \\boxed{5}.", res.get("answer").getAsString());
        assertEquals(2, res.get("promptTokens").getAsInt());
        assertEquals(16, res.get("latentTokens").getAsInt());
        assertEquals(3, res.getAsJsonArray("losses").size());
        assertEquals(1234567, res.get("peakDeviceBytes").getAsLong());
        JsonObject phases = res.getAsJsonObject("phaseNanos");
        assertEquals(Phase.values().length, phases.size());
        assertEquals(3 * 3_000_000L, phases.get("reconstruction_forward").getAsLong());
        assertFalse(o.has("profile"));
    }

    @Test
    void profilePrintsThePhaseBreakdownWithCallCounts() throws IOException {
        Path model = CliTestSupport.fakeCheckout(tmp.resolve("m"));
        for (String[] cmd : List.of(new String[] {"profile"}, new String[] {"solve", "--profile"})) {
            String[] args = new String[cmd.length + 5];
            System.arraycopy(cmd, 0, args, 0, cmd.length);
            System.arraycopy(new String[] {"--model", model.toString(), "-N", "2", "q"}, 0, args, cmd.length, 5);
            CliTestSupport.Run r = run(engines(), args);
            assertEquals(0, r.exit(), r.err());
            assertTrue(r.out().contains("calls are no-ops: CUDA not loaded"), r.out());
            // -N 2: 3 reconstruction forwards, 2 backwards, 2 updates, 3 latent chains, 1 prefill, 1 decode
            assertTrue(r.out().lines().anyMatch(l -> l.matches("\\s+reconstruction forward\\s+3\\s.*")), r.out());
            assertTrue(r.out().lines().anyMatch(l -> l.matches("\\s+backward\\s+2\\s.*")), r.out());
            assertTrue(r.out().lines().anyMatch(l -> l.matches("\\s+latent chain\\s+3\\s.*")), r.out());
            assertTrue(r.out().lines().anyMatch(l -> l.matches("\\s+question\\s+.*100\\.0%")), r.out());
        }
        CliTestSupport.Run json = run(engines(), "profile", "--json", "--model", model.toString(), "-N", "1", "q");
        JsonObject p = JsonParser.parseString(json.out()).getAsJsonObject().getAsJsonObject("profile");
        assertEquals(2, p.getAsJsonObject("reconstruction_forward").get("calls").getAsInt());
        assertFalse(p.get("nvtx").getAsBoolean());
    }

    @Test
    void engineFailuresExitOneWithTheMessage() throws IOException {
        Path model = CliTestSupport.fakeCheckout(tmp.resolve("m"));
        FakeEngine.Factory failing = new FakeEngine.Factory((q, o) -> {
            throw new IllegalStateException("device fell over");
        });
        CliTestSupport.Run r = run(failing, "solve", "--model", model.toString(), "q");
        assertEquals(1, r.exit());
        assertTrue(r.err().startsWith("relat: error: device fell over"), r.err());
        assertTrue(failing.opened.get(0).closed, "closed on failure too");
    }
}
