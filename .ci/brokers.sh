# Sourced by .ci/run: makes sure the brokers the broker-sink tests publish to are up on
# 127.0.0.1 (NATS with JetStream :4222, RabbitMQ :5672, Mosquitto :1883). Each is started only
# when its port is closed and its server is installed; where one is absent, its tests skip.
_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
_wait_port() {
    for _ in $(seq 1 60); do _port_open "$1" && return 0; sleep 0.5; done
    echo "$2 did not come up on 127.0.0.1:$1: its tests skip" >&2
}
if ! _port_open 4222 && [ -x /usr/sbin/nats-server ]; then
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
        -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
    _wait_port 4222 NATS
fi
if ! _port_open 5672 && command -v rabbitmq-server >/dev/null 2>&1; then
    rabbitmq-server -detached || true
    _wait_port 5672 RabbitMQ
fi
if ! _port_open 1883 && command -v mosquitto >/dev/null 2>&1; then
    mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
    _wait_port 1883 Mosquitto
fi
