package org.elasticsearch.node;

import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.ClasspathPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;

import java.util.Collection;
import java.util.List;

/**
 * An Elasticsearch node whose plugins are classes on the class path (the distribution loads
 * modules and plugins from folders, each in a class loader of its own; Maven Central has none).
 *
 * <p>It lives in this package because a node's construction steps are package-private.
 */
public final class ClasspathNode extends Node {

    private final List<Class<? extends Plugin>> pluginClasses;

    public ClasspathNode(Environment environment, Collection<Class<? extends Plugin>> pluginClasses) {
        super(NodeConstruction.prepareConstruction(environment, null, new NodeServiceProvider() {
            @Override
            PluginsService newPluginService(Environment initialEnvironment, PluginsLoader pluginsLoader) {
                return new ClasspathPluginsService(initialEnvironment, pluginClasses);
            }
        }, true));
        this.pluginClasses = List.copyOf(pluginClasses);
    }

    /** The plugin classes this node was built with. */
    public List<Class<? extends Plugin>> pluginClasses() {
        return pluginClasses;
    }
}
