// Reads Avro container files with Apache's Java library (Debian's libavro-java), as any Avro
// tool would: prints {"seqs": [...]} of every record, or {"error": "..."} at the first failure.
// Run by test/helpers/avro-readers.ts as a source file (java ReadAvro.java FILE...).
import java.io.File;
import org.apache.avro.file.DataFileReader;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;

public class ReadAvro {
  public static void main(String[] args) {
    StringBuilder seqs = new StringBuilder();
    try {
      for (String path : args) {
        try (DataFileReader<GenericRecord> reader = new DataFileReader<>(new File(path), new GenericDatumReader<GenericRecord>())) {
          for (GenericRecord record : reader) seqs.append(seqs.length() == 0 ? "" : ",").append(record.get("seq"));
        }
      }
      System.out.println("{\"seqs\": [" + seqs + "]}");
    } catch (Exception e) {
      System.out.println("{\"seqs\": [" + seqs + "], \"error\": \"" + String.valueOf(e).replace("\\", "\\\\").replace("\"", "'") + "\"}");
    }
  }
}
