package dev.shopstream.search;

import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.miscellaneous.WordDelimiterGraphFilter;
import org.apache.lucene.analysis.miscellaneous.WordDelimiterIterator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.Analysis;
import org.elasticsearch.index.analysis.TokenFilterFactory;

import static org.apache.lucene.analysis.miscellaneous.WordDelimiterGraphFilter.CATENATE_ALL;
import static org.apache.lucene.analysis.miscellaneous.WordDelimiterGraphFilter.CATENATE_NUMBERS;
import static org.apache.lucene.analysis.miscellaneous.WordDelimiterGraphFilter.CATENATE_WORDS;
import static org.apache.lucene.analysis.miscellaneous.WordDelimiterGraphFilter.GENERATE_NUMBER_PARTS;
import static org.apache.lucene.analysis.miscellaneous.WordDelimiterGraphFilter.GENERATE_WORD_PARTS;
import static org.apache.lucene.analysis.miscellaneous.WordDelimiterGraphFilter.IGNORE_KEYWORDS;
import static org.apache.lucene.analysis.miscellaneous.WordDelimiterGraphFilter.PRESERVE_ORIGINAL;
import static org.apache.lucene.analysis.miscellaneous.WordDelimiterGraphFilter.SPLIT_ON_CASE_CHANGE;
import static org.apache.lucene.analysis.miscellaneous.WordDelimiterGraphFilter.SPLIT_ON_NUMERICS;
import static org.apache.lucene.analysis.miscellaneous.WordDelimiterGraphFilter.STEM_ENGLISH_POSSESSIVE;

/**
 * The {@code word_delimiter_graph} token filter with its boolean options and
 * {@code protected_words}; the default character table ({@code type_table} is not on this node).
 */
final class WordDelimiterGraph extends AbstractTokenFilterFactory {

    static final int DEFAULT_FLAGS = GENERATE_WORD_PARTS | GENERATE_NUMBER_PARTS | SPLIT_ON_CASE_CHANGE | SPLIT_ON_NUMERICS
        | STEM_ENGLISH_POSSESSIVE;

    private final int flags;
    private final boolean adjustOffsets;
    private final CharArraySet protectedWords;

    private WordDelimiterGraph(Environment env, String name, Settings settings) {
        super(name, settings);
        if (settings.hasValue("type_table") || settings.hasValue("type_table_path")) {
            throw new IllegalArgumentException("[" + name + "]: [type_table] is not supported on this node");
        }
        int set = 0;
        set |= flag(settings, "generate_word_parts", true, GENERATE_WORD_PARTS);
        set |= flag(settings, "generate_number_parts", true, GENERATE_NUMBER_PARTS);
        set |= flag(settings, "catenate_words", false, CATENATE_WORDS);
        set |= flag(settings, "catenate_numbers", false, CATENATE_NUMBERS);
        set |= flag(settings, "catenate_all", false, CATENATE_ALL);
        set |= flag(settings, "split_on_case_change", true, SPLIT_ON_CASE_CHANGE);
        set |= flag(settings, "preserve_original", false, PRESERVE_ORIGINAL);
        set |= flag(settings, "split_on_numerics", true, SPLIT_ON_NUMERICS);
        set |= flag(settings, "stem_english_possessive", true, STEM_ENGLISH_POSSESSIVE);
        set |= flag(settings, "ignore_keywords", false, IGNORE_KEYWORDS);
        this.flags = set;
        this.adjustOffsets = settings.getAsBoolean("adjust_offsets", true);
        this.protectedWords = Analysis.getWordSet(env, settings, "protected_words");
    }

    static TokenFilterFactory create(IndexSettings index, Environment env, String name, Settings settings) {
        return new WordDelimiterGraph(env, name, settings);
    }

    private static int flag(Settings settings, String key, boolean byDefault, int flag) {
        return settings.getAsBoolean(key, byDefault) ? flag : 0;
    }

    @Override
    public TokenStream create(TokenStream in) {
        return new WordDelimiterGraphFilter(in, adjustOffsets, WordDelimiterIterator.DEFAULT_WORD_DELIM_TABLE, flags, protectedWords);
    }

    @Override
    public TokenFilterFactory getSynonymFilter() {
        throw new IllegalArgumentException("Token filter [" + name() + "] cannot be used to parse synonyms");
    }
}
