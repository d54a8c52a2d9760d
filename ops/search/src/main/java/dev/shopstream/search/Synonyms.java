package dev.shopstream.search;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.synonym.SolrSynonymParser;
import org.apache.lucene.analysis.synonym.SynonymFilter;
import org.apache.lucene.analysis.synonym.SynonymGraphFilter;
import org.apache.lucene.analysis.synonym.SynonymMap;
import org.apache.lucene.analysis.synonym.WordnetSynonymParser;
import org.apache.lucene.util.CharsRef;
import org.apache.lucene.util.CharsRefBuilder;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexService.IndexCreationContext;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.Analysis;
import org.elasticsearch.index.analysis.AnalysisMode;
import org.elasticsearch.index.analysis.CharFilterFactory;
import org.elasticsearch.index.analysis.CustomAnalyzer;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;

import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;
import java.text.ParseException;
import java.util.List;
import java.util.function.Function;

/**
 * The {@code synonym} and {@code synonym_graph} token filters, with rules inline ({@code synonyms})
 * or in a file under the config folder ({@code synonyms_path}), in Solr format or
 * {@code format: wordnet}; {@code expand} (default true), {@code lenient} (skip a rule the chain
 * cannot analyse), {@code updateable} (search time only). Rules are analysed by the tokenizer and
 * filters that come before the synonym filter in its analyzer, so a chain-aware factory is made
 * per analyzer. {@code synonyms_set} needs the synonyms API, which this node does not have.
 */
final class Synonyms extends AbstractTokenFilterFactory {

    private final boolean graph;
    private final Settings settings;
    private final Environment environment;
    private final boolean expand;
    private final boolean lenient;
    private final String format;
    private final AnalysisMode analysisMode;

    private Synonyms(boolean graph, Environment environment, String name, Settings settings) {
        super(name, settings);
        if (settings.hasValue("synonyms_set")) {
            throw new IllegalArgumentException(
                "[" + name + "]: [synonyms_set] needs the synonyms API, which this node does not have; give [synonyms] or [synonyms_path]"
            );
        }
        if (settings.hasValue("synonyms") == false && settings.hasValue("synonyms_path") == false) {
            throw new IllegalArgumentException("[" + name + "]: a synonym filter needs [synonyms] or [synonyms_path]");
        }
        this.graph = graph;
        this.settings = settings;
        this.environment = environment;
        this.expand = settings.getAsBoolean("expand", true);
        this.lenient = settings.getAsBoolean("lenient", false);
        this.format = settings.get("format", "solr");
        this.analysisMode = settings.getAsBoolean("updateable", false) ? AnalysisMode.SEARCH_TIME : AnalysisMode.ALL;
        if (format.equals("solr") == false && format.equals("wordnet") == false) {
            throw new IllegalArgumentException("[" + name + "]: format [" + format + "] is neither [solr] nor [wordnet]");
        }
    }

    static TokenFilterFactory synonym(IndexSettings index, Environment env, String name, Settings settings) {
        return new Synonyms(false, env, name, settings);
    }

    static TokenFilterFactory synonymGraph(IndexSettings index, Environment env, String name, Settings settings) {
        return new Synonyms(true, env, name, settings);
    }

    @Override
    public AnalysisMode getAnalysisMode() {
        return analysisMode;
    }

    @Override
    public TokenStream create(TokenStream in) {
        throw new IllegalStateException("synonym filter [" + name() + "] is used before its analysis chain is known");
    }

    @Override
    public TokenFilterFactory getChainAwareTokenFilterFactory(
        IndexCreationContext context,
        TokenizerFactory tokenizer,
        List<CharFilterFactory> charFilters,
        List<TokenFilterFactory> previousTokenFilters,
        Function<String, TokenFilterFactory> allFilters
    ) {
        Analyzer ruleAnalyzer = new CustomAnalyzer(
            tokenizer,
            charFilters.toArray(new CharFilterFactory[0]),
            previousTokenFilters.stream().map(TokenFilterFactory::getSynonymFilter).toArray(TokenFilterFactory[]::new)
        );
        SynonymMap synonyms = parse(ruleAnalyzer);
        String name = name();
        boolean graph = this.graph;
        AnalysisMode mode = analysisMode;
        return new TokenFilterFactory() {
            @Override
            public String name() {
                return name;
            }

            @Override
            @SuppressWarnings("deprecation") // SynonymFilter is what the non-graph synonym filter is
            public TokenStream create(TokenStream in) {
                if (synonyms.fst == null) {
                    return in;
                }
                return graph ? new SynonymGraphFilter(in, synonyms, false) : new SynonymFilter(in, synonyms, false);
            }

            @Override
            public TokenFilterFactory getSynonymFilter() {
                // a later synonym filter parses its rules without this one: rules cannot hold stacked tokens
                return IDENTITY_FILTER;
            }

            @Override
            public AnalysisMode getAnalysisMode() {
                return mode;
            }
        };
    }

    private SynonymMap parse(Analyzer ruleAnalyzer) {
        StringBuilder rules = new StringBuilder();
        for (String line : Analysis.getWordList(environment, settings, "synonyms")) {
            rules.append(line).append('\n');
        }
        try (Reader reader = new StringReader(rules.toString())) {
            SynonymMap.Parser parser = format.equals("wordnet")
                ? new LenientWordnet(expand, lenient, ruleAnalyzer)
                : new LenientSolr(expand, lenient, ruleAnalyzer);
            parser.parse(reader);
            return parser.build();
        } catch (IOException | ParseException | IllegalArgumentException e) {
            throw new IllegalArgumentException("failed to build synonyms of [" + name() + "]: " + e.getMessage(), e);
        }
    }

    /** With lenient, a rule whose words the chain drops or cannot analyse is skipped, not an error. */
    private static CharsRef analyzeLeniently(boolean lenient, String text, CharsRefBuilder reuse, RuleAnalysis strict)
        throws IOException {
        try {
            return strict.analyze(text, reuse);
        } catch (IllegalArgumentException e) {
            if (lenient) {
                return new CharsRef("");
            }
            throw e;
        }
    }

    private interface RuleAnalysis {
        CharsRef analyze(String text, CharsRefBuilder reuse) throws IOException;
    }

    private static final class LenientSolr extends SolrSynonymParser {
        private final boolean lenient;

        LenientSolr(boolean expand, boolean lenient, Analyzer analyzer) {
            super(true, expand, analyzer);
            this.lenient = lenient;
        }

        @Override
        public CharsRef analyze(String text, CharsRefBuilder reuse) throws IOException {
            return analyzeLeniently(lenient, text, reuse, super::analyze);
        }

        @Override
        public void add(CharsRef input, CharsRef output, boolean includeOrig) {
            if (lenient == false || (input.length > 0 && output.length > 0)) {
                super.add(input, output, includeOrig);
            }
        }
    }

    private static final class LenientWordnet extends WordnetSynonymParser {
        private final boolean lenient;

        LenientWordnet(boolean expand, boolean lenient, Analyzer analyzer) {
            super(true, expand, analyzer);
            this.lenient = lenient;
        }

        @Override
        public CharsRef analyze(String text, CharsRefBuilder reuse) throws IOException {
            return analyzeLeniently(lenient, text, reuse, super::analyze);
        }

        @Override
        public void add(CharsRef input, CharsRef output, boolean includeOrig) {
            if (lenient == false || (input.length > 0 && output.length > 0)) {
                super.add(input, output, includeOrig);
            }
        }
    }
}
