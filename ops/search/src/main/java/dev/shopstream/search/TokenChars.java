package dev.shopstream.search;

import org.elasticsearch.common.settings.Settings;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.IntPredicate;

/**
 * The {@code token_chars} of the n-gram tokenizers: which characters a token is made of (letter,
 * digit, whitespace, punctuation, symbol, custom with {@code custom_token_chars}); none named keeps
 * every character.
 */
final class TokenChars {

    private TokenChars() {}

    /** The predicate for a tokenizer's settings, or null when every character belongs to a token. */
    static IntPredicate fromSettings(Settings settings) {
        List<String> classes = settings.getAsList("token_chars");
        if (classes.isEmpty()) {
            return null;
        }
        List<IntPredicate> accepted = new ArrayList<>();
        for (String name : classes) {
            accepted.add(switch (name.toLowerCase(Locale.ROOT)) {
                case "letter" -> Character::isLetter;
                case "digit" -> Character::isDigit;
                case "whitespace" -> Character::isWhitespace;
                case "punctuation" -> TokenChars::isPunctuation;
                case "symbol" -> TokenChars::isSymbol;
                case "custom" -> custom(settings);
                default -> throw new IllegalArgumentException(
                    "unknown token type [" + name + "], must be one of [letter, digit, whitespace, punctuation, symbol, custom]"
                );
            });
        }
        return c -> accepted.stream().anyMatch(p -> p.test(c));
    }

    private static IntPredicate custom(Settings settings) {
        String chars = settings.get("custom_token_chars");
        if (chars == null || chars.isEmpty()) {
            throw new IllegalArgumentException("token type [custom] requires [custom_token_chars] to be set");
        }
        int[] codePoints = chars.codePoints().toArray();
        return c -> {
            for (int codePoint : codePoints) {
                if (codePoint == c) {
                    return true;
                }
            }
            return false;
        };
    }

    private static boolean isPunctuation(int c) {
        return switch (Character.getType(c)) {
            case Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
                Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
                Character.OTHER_PUNCTUATION -> true;
            default -> false;
        };
    }

    private static boolean isSymbol(int c) {
        return switch (Character.getType(c)) {
            case Character.MATH_SYMBOL, Character.CURRENCY_SYMBOL, Character.MODIFIER_SYMBOL, Character.OTHER_SYMBOL -> true;
            default -> false;
        };
    }
}
