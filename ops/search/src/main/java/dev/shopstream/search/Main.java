package dev.shopstream.search;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.elasticsearch.cluster.ClusterName;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.ClasspathNode;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.transport.netty4.Netty4Plugin;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Starts one Elasticsearch node from the jars on the class path: {@code Main CONFIG_DIR}.
 *
 * <p>CONFIG_DIR holds {@code elasticsearch.yml} (with {@code path.home}, {@code path.data} and the
 * node's settings) and {@code log4j2.properties}. The node runs with the Netty transport and our
 * {@link ShopstreamSearchPlugin}; SIGTERM closes it cleanly. The process exits 1 when the node
 * cannot start, with the reason in the log.
 */
public final class Main {

    private Main() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: java -cp ... dev.shopstream.search.Main CONFIG_DIR");
            System.exit(2);
        }
        LogConfigurator.registerErrorListener();
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            Settings.EMPTY,
            Map.of(),
            Path.of(args[0]).toAbsolutePath(),
            () -> "search"
        );
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(environment.settings()));
        LogConfigurator.setClusterName(ClusterName.CLUSTER_NAME_SETTING.get(environment.settings()).value());
        LogConfigurator.configure(environment, true);
        Logger logger = LogManager.getLogger(Main.class);

        Node node = start(environment, logger);
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.prepareForClose();
                node.close();
                if (node.awaitClose(30, TimeUnit.SECONDS) == false) {
                    logger.warn("the node did not close within 30 s");
                }
            } catch (Exception e) {
                logger.warn("closing the node failed", e);
            } finally {
                closed.countDown();
                LogManager.shutdown();
            }
        }, "shopstream-search-close"));
        closed.await();
    }

    private static Node start(Environment environment, Logger logger) {
        try {
            return new ClasspathNode(environment, List.of(Netty4Plugin.class, ShopstreamSearchPlugin.class)).start();
        } catch (Exception | LinkageError e) {
            logger.fatal("the search node did not start", e);
            LogManager.shutdown();
            System.exit(1);
            throw new AssertionError("unreachable", e);
        }
    }
}
