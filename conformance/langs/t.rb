require 'socket'; require 'tmpdir'; require 'open3'
th = 8.times.map { |i| Thread.new { (1..100000).reduce(:+) * i } }; puts "threads #{th.map(&:value).sum}"
srv = TCPServer.new('127.0.0.1', 0); port = srv.addr[1]
t = Thread.new { c = srv.accept; c.puts c.gets.upcase; c.close }
s = TCPSocket.new('127.0.0.1', port); s.puts 'hello'; puts "tcp #{s.gets}"; t.join
r, w = IO.pipe; pid = fork { r.close; w.puts "child #{Process.pid != 0}"; exit! 7 }; w.close; puts r.read; Process.wait(pid); puts "status #{$?.exitstatus}"
o, st = Open3.capture2('sh', '-c', 'echo open3; exit 2'); puts "#{o.strip} #{st.exitstatus}"
Dir.mktmpdir { |d| File.write("#{d}/a", 'x' * 5000); File.open("#{d}/a") { |f| f.flock(File::LOCK_EX); puts "flock #{f.size}" }; puts Dir.children(d).inspect }
u1 = UDPSocket.new; u1.bind('127.0.0.1', 0); u2 = UDPSocket.new; u2.send('udp!', 0, '127.0.0.1', u1.addr[1]); puts u1.recvfrom(10)[0]
rd, = IO.select([srv], nil, nil, 0.1); puts "select #{rd.inspect}"
q = Queue.new; Thread.new { sleep 0.1; q << :woke }; puts q.pop
trap('USR1') { puts 'usr1' }; Process.kill('USR1', Process.pid); sleep 0.1
puts 'done'
