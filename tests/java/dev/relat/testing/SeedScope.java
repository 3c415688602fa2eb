package dev.relat.testing;

import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Forgets the last drawn seed before every test (registered for all tests through
 * tests/resources/META-INF/services), so a failure in a test that draws no seed of its own is not
 * reported with the previous test's seed.
 */
public final class SeedScope implements BeforeEachCallback {
    @Override
    public void beforeEach(ExtensionContext context) {
        Seeds.forget();
    }
}
