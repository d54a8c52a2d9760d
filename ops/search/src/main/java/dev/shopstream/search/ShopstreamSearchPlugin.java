package dev.shopstream.search;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.LowerCaseFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.core.FlattenGraphFilter;
import org.apache.lucene.analysis.core.KeywordTokenizer;
import org.apache.lucene.analysis.core.LetterTokenizer;
import org.apache.lucene.analysis.core.SimpleAnalyzer;
import org.apache.lucene.analysis.core.UpperCaseFilter;
import org.apache.lucene.analysis.core.WhitespaceAnalyzer;
import org.apache.lucene.analysis.core.WhitespaceTokenizer;
import org.apache.lucene.analysis.el.GreekLowerCaseFilter;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.apache.lucene.analysis.en.KStemFilter;
import org.apache.lucene.analysis.en.PorterStemFilter;
import org.apache.lucene.analysis.ga.IrishLowerCaseFilter;
import org.apache.lucene.analysis.miscellaneous.ASCIIFoldingFilter;
import org.apache.lucene.analysis.miscellaneous.KeywordRepeatFilter;
import org.apache.lucene.analysis.miscellaneous.LengthFilter;
import org.apache.lucene.analysis.miscellaneous.RemoveDuplicatesTokenFilter;
import org.apache.lucene.analysis.miscellaneous.TrimFilter;
import org.apache.lucene.analysis.miscellaneous.WordDelimiterGraphFilter;
import org.apache.lucene.analysis.miscellaneous.WordDelimiterIterator;
import org.apache.lucene.analysis.ngram.EdgeNGramTokenFilter;
import org.apache.lucene.analysis.ngram.EdgeNGramTokenizer;
import org.apache.lucene.analysis.ngram.NGramTokenizer;
import org.apache.lucene.analysis.tr.TurkishLowerCaseFilter;
import org.apache.lucene.util.SetOnce;
import org.elasticsearch.cluster.metadata.IndexNameExpressionResolver;
import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.io.stream.NamedWriteableRegistry;
import org.elasticsearch.common.settings.ClusterSettings;
import org.elasticsearch.common.settings.IndexScopedSettings;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.settings.SettingsFilter;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.AbstractIndexAnalyzerProvider;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.AbstractTokenizerFactory;
import org.elasticsearch.index.analysis.Analysis;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.index.analysis.NormalizingTokenFilterFactory;
import org.elasticsearch.index.analysis.PreBuiltAnalyzerProviderFactory;
import org.elasticsearch.index.analysis.PreConfiguredTokenFilter;
import org.elasticsearch.index.analysis.PreConfiguredTokenizer;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.indices.analysis.PreBuiltCacheFactory.CachingStrategy;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.rest.RestController;
import org.elasticsearch.rest.RestHandler;

import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.function.Supplier;

import static org.elasticsearch.plugins.AnalysisPlugin.requiresAnalysisSettings;

/**
 * What the distribution's analysis-common and rest-root modules would give, for what our mappings use.
 *
 * <p>Analyzers {@code english}, {@code simple}, {@code whitespace}; tokenizers {@code edge_ngram},
 * {@code ngram}, {@code keyword}, {@code whitespace}, {@code letter}; token filters
 * {@code asciifolding}, {@code lowercase} (with a language), {@code uppercase}, {@code trim},
 * {@code length}, {@code stemmer}, {@code snowball}, {@code porter_stem}, {@code kstem},
 * {@code edge_ngram}, {@code ngram}, {@code synonym}, {@code synonym_graph},
 * {@code word_delimiter_graph}, {@code flatten_graph}, {@code keyword_repeat},
 * {@code remove_duplicates}; each by name with its defaults, or configured in an index's analysis
 * settings. All are Lucene's (lucene-analysis-common, a dependency of the server jar). And
 * {@code GET /} ({@link RootAction}).
 */
public final class ShopstreamSearchPlugin extends Plugin implements AnalysisPlugin, ActionPlugin {

    private final SetOnce<ClusterService> clusterService = new SetOnce<>();

    @Override
    public Collection<?> createComponents(PluginServices services) {
        clusterService.set(services.clusterService());
        return List.of();
    }

    @Override
    public Collection<RestHandler> getRestHandlers(
        Settings settings,
        NamedWriteableRegistry namedWriteableRegistry,
        RestController restController,
        ClusterSettings clusterSettings,
        IndexScopedSettings indexScopedSettings,
        SettingsFilter settingsFilter,
        IndexNameExpressionResolver indexNameExpressionResolver,
        Supplier<DiscoveryNodes> nodesInCluster,
        Predicate<NodeFeature> clusterSupportsFeature
    ) {
        return List.of(new RootAction(clusterService::get));
    }

    // -- analyzers -----------------------------------------------------------
    @Override
    public Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> getAnalyzers() {
        return Map.of(
            "english",
            (index, env, name, settings) -> provider(
                name,
                settings,
                new EnglishAnalyzer(
                    Analysis.parseStopWords(env, settings, EnglishAnalyzer.getDefaultStopSet()),
                    Analysis.parseStemExclusion(settings, CharArraySet.EMPTY_SET)
                )
            ),
            "simple",
            (index, env, name, settings) -> provider(name, settings, new SimpleAnalyzer()),
            "whitespace",
            (index, env, name, settings) -> provider(name, settings, new WhitespaceAnalyzer())
        );
    }

    @Override
    public List<PreBuiltAnalyzerProviderFactory> getPreBuiltAnalyzerProviderFactories() {
        return List.of(
            new PreBuiltAnalyzerProviderFactory("english", CachingStrategy.LUCENE, EnglishAnalyzer::new),
            new PreBuiltAnalyzerProviderFactory("simple", CachingStrategy.LUCENE, SimpleAnalyzer::new),
            new PreBuiltAnalyzerProviderFactory("whitespace", CachingStrategy.LUCENE, WhitespaceAnalyzer::new)
        );
    }

    private static <T extends Analyzer> AnalyzerProvider<T> provider(String name, Settings settings, T analyzer) {
        return new AbstractIndexAnalyzerProvider<>(name, settings) {
            @Override
            public T get() {
                return analyzer;
            }
        };
    }

    // -- tokenizers ----------------------------------------------------------
    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        return Map.of(
            "edge_ngram",
            NGrams::edgeTokenizer,
            "ngram",
            NGrams::tokenizer,
            "keyword",
            (index, env, name, settings) -> {
                int bufferSize = settings.getAsInt("buffer_size", KeywordTokenizer.DEFAULT_BUFFER_SIZE);
                return tokenizer(index, name, settings, () -> new KeywordTokenizer(bufferSize));
            },
            "whitespace",
            (index, env, name, settings) -> {
                int maxLength = settings.getAsInt("max_token_length", 255);
                return tokenizer(index, name, settings, () -> new WhitespaceTokenizer(maxLength));
            },
            "letter",
            (index, env, name, settings) -> tokenizer(index, name, settings, LetterTokenizer::new)
        );
    }

    private static TokenizerFactory tokenizer(
        IndexSettings index,
        String name,
        Settings settings,
        Supplier<Tokenizer> create
    ) {
        return new AbstractTokenizerFactory(index, settings, name) {
            @Override
            public Tokenizer create() {
                return create.get();
            }
        };
    }

    @Override
    public List<PreConfiguredTokenizer> getPreConfiguredTokenizers() {
        return List.of(
            PreConfiguredTokenizer.singleton("keyword", KeywordTokenizer::new),
            PreConfiguredTokenizer.singleton("whitespace", WhitespaceTokenizer::new),
            PreConfiguredTokenizer.singleton("letter", LetterTokenizer::new),
            PreConfiguredTokenizer.singleton("edge_ngram", () -> new EdgeNGramTokenizer(1, 2)),
            PreConfiguredTokenizer.singleton("ngram", NGramTokenizer::new)
        );
    }

    // -- token filters -------------------------------------------------------
    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        Map<String, AnalysisProvider<TokenFilterFactory>> filters = new TreeMap<>();
        filters.put("asciifolding", (index, env, name, settings) -> asciiFolding(name, settings));
        filters.put("lowercase", (index, env, name, settings) -> normalizing(name, settings, lowercase(name, settings)));
        filters.put("uppercase", (index, env, name, settings) -> normalizing(name, settings, UpperCaseFilter::new));
        filters.put("trim", (index, env, name, settings) -> normalizing(name, settings, TrimFilter::new));
        filters.put("length", (index, env, name, settings) -> {
            int min = settings.getAsInt("min", 0);
            int max = settings.getAsInt("max", Integer.MAX_VALUE);
            return plain(name, settings, in -> new LengthFilter(in, min, max));
        });
        filters.put("stemmer", Stemmers::stemmer);
        filters.put("snowball", Stemmers::snowball);
        filters.put("porter_stem", (index, env, name, settings) -> plain(name, settings, PorterStemFilter::new));
        filters.put("kstem", (index, env, name, settings) -> plain(name, settings, KStemFilter::new));
        filters.put("edge_ngram", NGrams::edgeFilter);
        filters.put("ngram", NGrams::filter);
        filters.put("synonym", requiresAnalysisSettings(Synonyms::synonym));
        filters.put("synonym_graph", requiresAnalysisSettings(Synonyms::synonymGraph));
        filters.put("word_delimiter_graph", WordDelimiterGraph::create);
        filters.put("flatten_graph", (index, env, name, settings) -> plain(name, settings, FlattenGraphFilter::new));
        filters.put("keyword_repeat", (index, env, name, settings) -> plain(name, settings, KeywordRepeatFilter::new));
        filters.put("remove_duplicates", (index, env, name, settings) -> plain(name, settings, RemoveDuplicatesTokenFilter::new));
        return filters;
    }

    @Override
    public List<PreConfiguredTokenFilter> getPreConfiguredTokenFilters() {
        return List.of(
            PreConfiguredTokenFilter.singleton("asciifolding", true, ASCIIFoldingFilter::new),
            PreConfiguredTokenFilter.singleton("uppercase", true, UpperCaseFilter::new),
            PreConfiguredTokenFilter.singleton("trim", true, TrimFilter::new),
            PreConfiguredTokenFilter.singleton("porter_stem", false, PorterStemFilter::new),
            PreConfiguredTokenFilter.singleton("kstem", false, KStemFilter::new),
            PreConfiguredTokenFilter.singleton("flatten_graph", false, FlattenGraphFilter::new),
            PreConfiguredTokenFilter.singleton("keyword_repeat", false, false, KeywordRepeatFilter::new),
            PreConfiguredTokenFilter.singleton("remove_duplicates", false, RemoveDuplicatesTokenFilter::new),
            PreConfiguredTokenFilter.singleton("edge_ngram", false, false, in -> new EdgeNGramTokenFilter(in, 1)),
            PreConfiguredTokenFilter.singleton(
                "word_delimiter_graph",
                false,
                false,
                in -> new WordDelimiterGraphFilter(
                    in,
                    true,
                    WordDelimiterIterator.DEFAULT_WORD_DELIM_TABLE,
                    WordDelimiterGraph.DEFAULT_FLAGS,
                    null
                )
            )
        );
    }

    private static Function<TokenStream, TokenStream> lowercase(String name, Settings settings) {
        String language = settings.get("language");
        if (language == null) {
            return LowerCaseFilter::new;
        }
        return switch (language.toLowerCase(Locale.ROOT)) {
            case "greek" -> GreekLowerCaseFilter::new;
            case "irish" -> IrishLowerCaseFilter::new;
            case "turkish" -> TurkishLowerCaseFilter::new;
            default -> throw new IllegalArgumentException(
                "lowercase [" + name + "]: language [" + language + "] is not one of [greek, irish, turkish]"
            );
        };
    }

    private static TokenFilterFactory asciiFolding(String name, Settings settings) {
        boolean preserveOriginal = settings.getAsBoolean("preserve_original", false);
        return new Normalizing(name, settings, in -> new ASCIIFoldingFilter(in, preserveOriginal)) {
            @Override
            public TokenStream normalize(TokenStream in) {
                return new ASCIIFoldingFilter(in, false); // a query term folds to one term
            }
        };
    }

    private static TokenFilterFactory plain(String name, Settings settings, Function<TokenStream, TokenStream> create) {
        return new AbstractTokenFilterFactory(name, settings) {
            @Override
            public TokenStream create(TokenStream in) {
                return create.apply(in);
            }
        };
    }

    private static TokenFilterFactory normalizing(String name, Settings settings, Function<TokenStream, TokenStream> create) {
        return new Normalizing(name, settings, create);
    }

    /** A filter that may run in a normalizer and on multi-term query text (prefix, wildcard, fuzzy). */
    private static class Normalizing extends AbstractTokenFilterFactory implements NormalizingTokenFilterFactory {
        private final Function<TokenStream, TokenStream> create;

        Normalizing(String name, Settings settings, Function<TokenStream, TokenStream> create) {
            super(name, settings);
            this.create = create;
        }

        @Override
        public TokenStream create(TokenStream in) {
            return create.apply(in);
        }
    }
}
