package dev.shopstream.search;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.en.EnglishMinimalStemFilter;
import org.apache.lucene.analysis.en.EnglishPossessiveFilter;
import org.apache.lucene.analysis.en.KStemFilter;
import org.apache.lucene.analysis.en.PorterStemFilter;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.tartarus.snowball.ext.EnglishStemmer;

import java.util.Locale;
import java.util.Map;
import java.util.function.Function;

/**
 * The English stemmers: {@code stemmer} with a {@code language} (or {@code name}) of english or
 * porter (Porter), porter2 (Snowball English), light_english (KStem), minimal_english or
 * possessive_english; {@code snowball} with language English.
 */
final class Stemmers {

    static final Map<String, Function<TokenStream, TokenStream>> ENGLISH = Map.of(
        "english",
        PorterStemFilter::new,
        "porter",
        PorterStemFilter::new,
        "porter2",
        in -> new SnowballFilter(in, new EnglishStemmer()),
        "light_english",
        KStemFilter::new,
        "minimal_english",
        EnglishMinimalStemFilter::new,
        "possessive_english",
        EnglishPossessiveFilter::new
    );

    private Stemmers() {}

    static TokenFilterFactory stemmer(IndexSettings index, Environment env, String name, Settings settings) {
        String language = settings.get("language", settings.get("name", "porter"));
        Function<TokenStream, TokenStream> stem = ENGLISH.get(language.toLowerCase(Locale.ROOT));
        if (stem == null) {
            throw new IllegalArgumentException(
                "stemmer [" + name + "]: language [" + language + "] is not on this node; it has " + ENGLISH.keySet().stream().sorted().toList()
            );
        }
        return new AbstractTokenFilterFactory(name, settings) {
            @Override
            public TokenStream create(TokenStream in) {
                return stem.apply(in);
            }
        };
    }

    static TokenFilterFactory snowball(IndexSettings index, Environment env, String name, Settings settings) {
        String language = settings.get("language", "English");
        if (language.equalsIgnoreCase("english") == false) {
            throw new IllegalArgumentException("snowball [" + name + "]: language [" + language + "] is not on this node; it has [English]");
        }
        return new AbstractTokenFilterFactory(name, settings) {
            @Override
            public TokenStream create(TokenStream in) {
                return new SnowballFilter(in, new EnglishStemmer());
            }
        };
    }
}
