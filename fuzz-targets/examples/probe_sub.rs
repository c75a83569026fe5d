use slurm_codec::conn::{ConnConfig, Connection, StreamStart};
use slurm_codec::Direction;
fn main() {
    let mut c = Connection::new(ConnConfig {
        start: StreamStart::Accepted,
        ..ConnConfig::default()
    });
    let mut ev = Vec::new();
    c.feed(
        Direction::ClientToServer,
        &[0, 0x0f, 0x42, 0x3c, 0x26, 0, 0, 0, 0x08, 0x01],
        &mut ev,
    );
    c.feed(Direction::ClientToServer, &vec![0; 999_990], &mut ev);
    println!("{:?} buffered {}", ev, c.buffered());
}
