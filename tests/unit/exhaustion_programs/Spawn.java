// Starts more threads than the budget allows (java Spawn.java runs the source directly).
public class Spawn {
    public static void main(String[] args) {
        for (int i = 0; i < 500; i++) {
            new Thread(() -> {
                try { Thread.sleep(10000); } catch (InterruptedException e) { }
            }).start();
        }
    }
}
