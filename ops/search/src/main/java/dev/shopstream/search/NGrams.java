package dev.shopstream.search;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.ngram.EdgeNGramTokenFilter;
import org.apache.lucene.analysis.ngram.EdgeNGramTokenizer;
import org.apache.lucene.analysis.ngram.NGramTokenFilter;
import org.apache.lucene.analysis.ngram.NGramTokenizer;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.AbstractTokenizerFactory;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;

import java.util.function.IntPredicate;

/**
 * The {@code ngram} and {@code edge_ngram} tokenizers and token filters ({@code min_gram},
 * {@code max_gram}; the tokenizers' {@code token_chars}, the filters' {@code preserve_original}).
 * An n-gram's spread of lengths is bounded by the index's {@code index.max_ngram_diff}.
 */
final class NGrams {

    private NGrams() {}

    static TokenizerFactory edgeTokenizer(IndexSettings index, Environment env, String name, Settings settings) {
        int min = settings.getAsInt("min_gram", 1);
        int max = settings.getAsInt("max_gram", 2);
        IntPredicate chars = TokenChars.fromSettings(settings);
        return new AbstractTokenizerFactory(index, settings, name) {
            @Override
            public Tokenizer create() {
                if (chars == null) {
                    return new EdgeNGramTokenizer(min, max);
                }
                return new EdgeNGramTokenizer(min, max) {
                    @Override
                    protected boolean isTokenChar(int c) {
                        return chars.test(c);
                    }
                };
            }
        };
    }

    static TokenizerFactory tokenizer(IndexSettings index, Environment env, String name, Settings settings) {
        int min = settings.getAsInt("min_gram", 1);
        int max = settings.getAsInt("max_gram", 2);
        checkSpread(index, name, min, max);
        IntPredicate chars = TokenChars.fromSettings(settings);
        return new AbstractTokenizerFactory(index, settings, name) {
            @Override
            public Tokenizer create() {
                if (chars == null) {
                    return new NGramTokenizer(min, max);
                }
                return new NGramTokenizer(min, max) {
                    @Override
                    protected boolean isTokenChar(int c) {
                        return chars.test(c);
                    }
                };
            }
        };
    }

    static TokenFilterFactory edgeFilter(IndexSettings index, Environment env, String name, Settings settings) {
        int min = settings.getAsInt("min_gram", 1);
        int max = settings.getAsInt("max_gram", 2);
        boolean preserveOriginal = settings.getAsBoolean("preserve_original", false);
        if (settings.get("side", "front").equals("front") == false) {
            throw new IllegalArgumentException("[side] of [" + name + "] must be [front]; reverse the token first for the back");
        }
        return new GramFilter(name, settings) {
            @Override
            public TokenStream create(TokenStream in) {
                return new EdgeNGramTokenFilter(in, min, max, preserveOriginal);
            }
        };
    }

    static TokenFilterFactory filter(IndexSettings index, Environment env, String name, Settings settings) {
        int min = settings.getAsInt("min_gram", 1);
        int max = settings.getAsInt("max_gram", 2);
        boolean preserveOriginal = settings.getAsBoolean("preserve_original", false);
        checkSpread(index, name, min, max);
        return new GramFilter(name, settings) {
            @Override
            public TokenStream create(TokenStream in) {
                return new NGramTokenFilter(in, min, max, preserveOriginal);
            }
        };
    }

    private static void checkSpread(IndexSettings index, String name, int min, int max) {
        int allowed = index.getMaxNgramDiff();
        if (max - min > allowed) {
            throw new IllegalArgumentException(
                "[" + name + "]: max_gram - min_gram is [" + (max - min) + "], more than [index.max_ngram_diff] allows ["
                    + allowed + "]; raise that index setting or narrow the grams"
            );
        }
    }

    /** Grams stack several tokens on one position, which a synonym rule cannot be parsed through. */
    private abstract static class GramFilter extends AbstractTokenFilterFactory {
        GramFilter(String name, Settings settings) {
            super(name, settings);
        }

        @Override
        public TokenFilterFactory getSynonymFilter() {
            throw new IllegalArgumentException("Token filter [" + name() + "] cannot be used to parse synonyms");
        }
    }
}
