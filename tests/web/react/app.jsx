// A tiny page using the PUBLISHED @clickvote/react client, unchanged.
// Config comes from window.CV = {apiUrl, publicKey, userId, like, rate, voteTo}.
import React from "react";
import { createRoot } from "react-dom/client";
import {
  ClickVoteProvider,
  ClickVoteComponent,
  LikeStyle,
  UpvoteStyle,
  RangeStyle,
} from "@clickvote/react";
import "@clickvote/react/index.css";

const cfg = window.CV;

function Probe({ name, props }) {
  // exposes what the component renders, for the test
  return (
    <span data-testid={name} data-count={String(props.total.count)} data-avg={String(props.total.avg)}
      data-voted={String(props.voted)} data-value={String(props.voteValue)}>
      {props.total.count}
    </span>
  );
}

function App() {
  return (
    <ClickVoteProvider value={{ apiUrl: cfg.apiUrl, publicKey: cfg.publicKey, userId: cfg.userId }}>
      <h1>React client @clickvote/react 0.0.8</h1>
      <section id="like">
        <ClickVoteComponent id={cfg.like} voteTo={cfg.voteTo}>
          {(props) => (<div><LikeStyle {...props} /><Probe name="like" props={props} /></div>)}
        </ClickVoteComponent>
      </section>
      {cfg.upvote ? (
        <section id="upvote">
          <ClickVoteComponent id={cfg.upvote} voteTo={cfg.voteTo}>
            {(props) => (<div><UpvoteStyle {...props} /><Probe name="upvote" props={props} /></div>)}
          </ClickVoteComponent>
        </section>
      ) : null}
      {cfg.rate ? (
        <section id="rate">
          <ClickVoteComponent id={cfg.rate} voteTo={cfg.voteTo}>
            {(props) => (<div><RangeStyle {...props} /><Probe name="rate" props={props} /></div>)}
          </ClickVoteComponent>
        </section>
      ) : null}
    </ClickVoteProvider>
  );
}

createRoot(document.getElementById("root")).render(<App />);
