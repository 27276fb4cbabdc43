import java.io.*;
import java.net.*;
import java.nio.*;
import java.nio.channels.*;
import java.nio.file.*;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;

public class T {
    static void p(String s) { System.out.println(s); }
    public static void main(String[] a) throws Exception {
        // threads and a pool
        ExecutorService ex = Executors.newFixedThreadPool(8);
        AtomicLong sum = new AtomicLong();
        List<Future<?>> fs = new ArrayList<>();
        for (int i = 0; i < 64; i++) { final int k = i; fs.add(ex.submit(() -> { long s = 0; for (int j = 0; j < 200000; j++) s += j % (k + 1); sum.addAndGet(s); })); }
        for (Future<?> f : fs) f.get();
        ex.shutdown();
        p("pool " + sum.get());
        // sockets over loopback
        try (ServerSocket ss = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            Thread t = new Thread(() -> { try (Socket c = ss.accept()) { BufferedReader r = new BufferedReader(new InputStreamReader(c.getInputStream())); PrintWriter w = new PrintWriter(c.getOutputStream(), true); String l; while ((l = r.readLine()) != null) w.println(l.toUpperCase()); } catch (IOException e) { p("srv " + e); } });
            t.start();
            try (Socket c = new Socket(InetAddress.getLoopbackAddress(), ss.getLocalPort())) {
                PrintWriter w = new PrintWriter(c.getOutputStream(), true); BufferedReader r = new BufferedReader(new InputStreamReader(c.getInputStream()));
                for (int i = 0; i < 100; i++) { w.println("hello" + i); if (!r.readLine().equals("HELLO" + i)) p("bad"); }
            }
            t.join();
            p("tcp ok");
        }
        // NIO selector
        try (Selector sel = Selector.open(); ServerSocketChannel ssc = ServerSocketChannel.open()) {
            ssc.bind(new InetSocketAddress("127.0.0.1", 0)); ssc.configureBlocking(false); ssc.register(sel, SelectionKey.OP_ACCEPT);
            SocketChannel cc = SocketChannel.open(); cc.configureBlocking(false); cc.connect(ssc.getLocalAddress());
            int got = 0; long t0 = System.nanoTime();
            while (got < 3 && System.nanoTime() - t0 < 5e9) {
                sel.select(100);
                for (Iterator<SelectionKey> it = sel.selectedKeys().iterator(); it.hasNext();) { SelectionKey k = it.next(); it.remove();
                    if (k.isAcceptable()) { SocketChannel sc = ssc.accept(); sc.configureBlocking(false); sc.register(sel, SelectionKey.OP_READ); got++; }
                    else if (k.isReadable()) { ByteBuffer b = ByteBuffer.allocate(100); int n = ((SocketChannel) k.channel()).read(b); if (n > 0) got++; }
                }
                if (cc.isConnectionPending() && cc.finishConnect()) { cc.write(ByteBuffer.wrap("x".getBytes())); got++; }
            }
            p("nio " + got);
            cc.close();
        }
        // files, mmap, locks, walk
        Path d = Files.createTempDirectory("jt");
        Path f = d.resolve("a.txt");
        Files.write(f, "line1\nline2\n".getBytes());
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            MappedByteBuffer m = ch.map(FileChannel.MapMode.READ_WRITE, 0, 4096);
            m.put(0, (byte) 'L'); m.force();
            try (FileLock l = ch.lock()) { p("lock " + l.isValid()); }
        }
        p("read " + Files.readAllLines(f).get(0) + " size " + Files.size(f));
        for (int i = 0; i < 20; i++) Files.createDirectories(d.resolve("x" + i).resolve("y"));
        try (var s = Files.walk(d)) { p("walk " + s.count()); }
        // watch service (inotify)
        WatchService ws = FileSystems.getDefault().newWatchService();
        d.register(ws, StandardWatchEventKinds.ENTRY_CREATE);
        Files.write(d.resolve("new.txt"), new byte[10]);
        WatchKey k = ws.poll(5, TimeUnit.SECONDS);
        p("watch " + (k == null ? "none" : k.pollEvents().get(0).context()));
        // processes
        Process pr = new ProcessBuilder("sh", "-c", "echo from-child; exit 3").redirectErrorStream(true).start();
        String out = new String(pr.getInputStream().readAllBytes()).trim();
        p("proc " + out + " " + pr.waitFor());
        // UDP
        try (DatagramSocket s1 = new DatagramSocket(0, InetAddress.getLoopbackAddress()); DatagramSocket s2 = new DatagramSocket()) {
            s2.send(new DatagramPacket("ping".getBytes(), 4, s1.getLocalSocketAddress()));
            DatagramPacket dp = new DatagramPacket(new byte[10], 10); s1.setSoTimeout(5000); s1.receive(dp);
            p("udp " + new String(dp.getData(), 0, dp.getLength()));
        }
        // GC pressure
        List<byte[]> junk = new ArrayList<>(); for (int i = 0; i < 2000; i++) { junk.add(new byte[100000]); if (junk.size() > 100) junk.clear(); }
        p("gc ok " + Runtime.getRuntime().availableProcessors());
        p("done");
    }
}
